"""The built-in status page as a status backend: the same plan as Atlassian Statuspage, written
to sevflow's own table and served by :mod:`sinks.status_server`."""

from dataclasses import replace
from datetime import datetime
from functools import partial

from sinks.clock import Clock
from sinks.statuspage_format import StatusChange, follow_up
from store.delivery_view import Alongside
from store.status_page import Plan, StatusPageRecord, StatusPageStore

__all__ = ["BuiltinStatusPage"]

_TITLES = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


class BuiltinStatusPage:
    def __init__(self, store: StatusPageStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def _apply(
        self, record: StatusPageRecord | None, incident_id: str, change: StatusChange
    ) -> StatusPageRecord:
        now: datetime = self._clock.now()
        updates = list(record.updates) if record else []
        if change.body is not None:
            updates.append(
                {"at": now.isoformat(), "status": _TITLES[change.status], "body": change.body}
            )
        components = dict(record.components) if record else {}
        components.update(change.components)
        return StatusPageRecord(
            incident_id=incident_id,
            name=change.name,
            status=change.status,
            impact=change.impact,
            components=components,
            updates=updates,
            created_at=record.created_at if record else now,
            updated_at=now,
            resolved_at=now if change.status == "resolved" else None,
        )

    #: A repeated create finds the open incident and changes nothing, so the sink needs no
    #: pending marker and no lookup to recover from a crash between create and its log entry.
    idempotent_create = True

    async def create(self, incident_id: str, change: StatusChange) -> str:
        await self._store.change(incident_id, self._created(incident_id, change))
        return incident_id

    async def update(self, external_id: str, incident_id: str, change: StatusChange) -> None:
        await self._store.change(
            external_id, partial(self._apply, incident_id=incident_id, change=change)
        )

    def create_alongside(self, incident_id: str, change: StatusChange) -> Alongside:
        """:meth:`create` as a write committed with its confirmation in the delivery log."""
        return self._store.alongside(incident_id, self._created(incident_id, change))

    def update_alongside(self, external_id: str, incident_id: str, change: StatusChange) -> Alongside:
        """:meth:`update` as a write committed with its confirmation in the delivery log."""
        return self._store.alongside(
            external_id, partial(self._apply, incident_id=incident_id, change=change)
        )

    def _created(self, incident_id: str, change: StatusChange) -> Plan:
        def plan(existing: StatusPageRecord | None) -> StatusPageRecord | None:
            if existing is None or existing.resolved_at is not None:
                return self._apply(existing, incident_id, change)
            return None

        return plan

    async def find(self, incident_id: str) -> str | None:
        record = await self._store.get(incident_id)
        return incident_id if record is not None and record.resolved_at is None else None

    async def follow_up_silent(self, before: datetime, promise: int) -> int:
        """Post the follow-up (promising the next within ``promise`` minutes) on each open
        incident unchanged since ``before``; how many got one.

        The age is checked again inside the change's transaction, so a concurrent change (an
        acknowledgement, another sinks replica's follow-up) wins and nothing is posted twice.
        """
        posted: list[str] = []

        def plan(existing: StatusPageRecord | None) -> StatusPageRecord | None:
            if existing is None or existing.resolved_at is not None or existing.updated_at > before:
                return None
            body = follow_up(existing.status, promise)
            if body is None:
                return None
            posted.append(existing.incident_id)
            now = self._clock.now()
            update = {"at": now.isoformat(), "status": _TITLES[existing.status], "body": body}
            return replace(existing, updates=[*existing.updates, update], updated_at=now)

        for record in await self._store.open_incidents():
            if record.updated_at <= before and follow_up(record.status) is not None:
                await self._store.change(record.incident_id, plan)
        return len(posted)

    async def close(self) -> None:
        return None
