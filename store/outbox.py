"""The outbox's own statements: the incident events stored and not yet published.

Events are written to ``incident_events`` by :class:`store.incidents.IncidentTx`, in the same
transaction as the change they describe. The relay (streams/relay.py) reads the unpublished ones
here in storage order and marks them published once Kafka has acknowledged them; the mark is
fenced by the relay's lease, so a holder that lost the lease marks nothing. The worker's metrics
count the backlog here.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import reader
from store.leases import Lease
from store.schema import incident_events, leases

__all__ = ["Outbox"]


class Outbox:
    """Reads and marks of the ``incident_events`` outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)

    async def unpublished(self, limit: int) -> list[Any]:
        """The first ``limit`` unpublished events in storage order (``position``), so each
        incident's events keep their sequence order: rows of ``position``, ``event_id``,
        ``incident_id`` and ``document`` (the event's JSON). A read-only transaction."""
        query = (
            select(
                incident_events.c.position,
                incident_events.c.event_id,
                incident_events.c.incident_id,
                incident_events.c.document,
            )
            .where(incident_events.c.published_at.is_(None))
            .order_by(incident_events.c.position)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return list((await conn.execute(query)).all())

    async def mark_published(self, positions: Sequence[int], lease: Lease, now: datetime) -> None:
        """Mark the events at ``positions`` published at ``now``, only while ``lease`` is still
        held with the token it was acquired with (the fence: a relay that lost its lease, and
        whose successor may already have re-read the events, changes nothing)."""
        fence = exists().where(
            and_(
                leases.c.name == lease.name,
                leases.c.holder == lease.holder,
                leases.c.token == lease.token,
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                update(incident_events)
                .where(incident_events.c.position.in_(positions), fence)
                .values(published_at=now)
            )

    async def backlog(self) -> int:
        """How many stored events are not yet published."""
        query = (
            select(func.count())
            .select_from(incident_events)
            .where(incident_events.c.published_at.is_(None))
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
