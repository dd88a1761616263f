"""Read-only incident queries for operators and reports, on one connection.

The incident lists (``sevflow incidents list``, the Incident API: analytics/incidents.py), the
response-time reports (analytics/database.py) and ``sevflow explain`` ask the store questions
that are not the worker's; their statements live here, each a method of :class:`IncidentReads`.
A caller opens one with :func:`incident_reads` and asks several questions on the same connection,
as it did when the statements were written inline.
"""

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.schema import alerts, incident_events, incident_groups, incidents

__all__ = ["IncidentReads", "incident_reads"]


class IncidentReads:
    """The queries, on one open connection (see :func:`incident_reads`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def newest(
        self,
        *,
        limit: int,
        state: str | None = None,
        severity: str | None = None,
        team: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> Sequence[str]:
        """The documents of at most ``limit`` incidents, newest first (``opened_at`` descending,
        then id), with this state and severity (when given), opened in ``[since, until)``, and
        coming after ``after`` = ``(opened_at, id)`` of the last incident already read (a keyset
        position, which new incidents opening meanwhile do not shift)."""
        newest_first = (incidents.c.opened_at.desc(), incidents.c.id.desc())
        query = select(incidents.c.document).order_by(*newest_first)
        if state is not None:
            query = query.where(incidents.c.state == state)
        if severity is not None:
            query = query.where(incidents.c.severity == severity)
        if team is not None:
            query = query.where(incidents.c.team == team)
        if since is not None:
            query = query.where(incidents.c.opened_at >= since)
        if until is not None:
            query = query.where(incidents.c.opened_at < until)
        if after is not None:
            opened_at, incident_id = after
            query = query.where(
                or_(
                    incidents.c.opened_at < opened_at,
                    and_(incidents.c.opened_at == opened_at, incidents.c.id < incident_id),
                )
            )
        return (await self._conn.execute(query.limit(limit))).scalars().all()

    async def opened_with_events(
        self,
        event_types: Collection[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[Sequence[str], Sequence[tuple[str, str]]]:
        """The documents of every incident opened in ``[since, until)``, and ``(incident_id,
        event document)`` of their events of ``event_types``, each incident's in sequence order.
        Two queries, however many incidents."""
        window = select(incidents.c.id)
        if since is not None:
            window = window.where(incidents.c.opened_at >= since)
        if until is not None:
            window = window.where(incidents.c.opened_at < until)
        incident_query = select(incidents.c.document).where(incidents.c.id.in_(window))
        events_query = (
            select(incident_events.c.incident_id, incident_events.c.document)
            .where(
                incident_events.c.incident_id.in_(window),
                incident_events.c.type.in_(list(event_types)),
            )
            .order_by(incident_events.c.incident_id, incident_events.c.sequence)
        )
        documents = (await self._conn.execute(incident_query)).scalars().all()
        events = [(i, d) for i, d in (await self._conn.execute(events_query)).all()]
        return documents, events

    async def events_of(
        self, incident_ids: Collection[str], event_types: Collection[str]
    ) -> Sequence[tuple[str, str]]:
        """``(incident_id, event document)`` of these incidents' events of ``event_types``, each
        incident's in sequence order: one query."""
        if not incident_ids:
            return []
        query = (
            select(incident_events.c.incident_id, incident_events.c.document)
            .where(
                incident_events.c.incident_id.in_(list(incident_ids)),
                incident_events.c.type.in_(list(event_types)),
            )
            .order_by(incident_events.c.incident_id, incident_events.c.sequence)
        )
        return [(i, d) for i, d in (await self._conn.execute(query)).all()]

    async def group_of_alert(self, fingerprint: str) -> str | None:
        """The group key the alert with this fingerprint was last grouped under, if it was seen."""
        query = select(alerts.c.group_key).where(alerts.c.fingerprint == fingerprint)
        group_key: str | None = (await self._conn.execute(query)).scalar_one_or_none()
        return group_key

    async def incident_of_group(self, group_key: str) -> str | None:
        """The id of the incident the group's alerts join now, if the group has one."""
        query = select(incident_groups.c.incident_id).where(incident_groups.c.group_key == group_key)
        incident_id: str | None = (await self._conn.execute(query)).scalar_one_or_none()
        return incident_id


@asynccontextmanager
async def incident_reads(engine: AsyncEngine) -> AsyncIterator[IncidentReads]:
    """An :class:`IncidentReads` on a connection of ``engine``, closed on leaving."""
    async with engine.connect() as conn:
        yield IncidentReads(conn)
