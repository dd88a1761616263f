"""What the delivery log (:mod:`store.deliveries`) keeps in memory and writes in batches.

:class:`Preloaded` is one sink's view of its current batch, read in one round trip and kept
current by this process's own writes (the only writer of those incidents' entries: a sink's
consumer group gives each incident's partition to one process at a time).
:func:`write_confirmations` writes every confirmation of a group commit as two multi-row
statements.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from store.sinks_schema import sink_deliveries, sink_refs
from store.upserts import dialect_insert

__all__ = ["Confirmation", "Preloaded", "StepRecord", "write_confirmations"]


@dataclass(frozen=True)
class Confirmation:
    """A confirmed effect, waiting for its transaction (:meth:`DeliveryLog.confirm`)."""

    sink: str
    event_ids: tuple[str, ...]
    step: str
    incident_id: str
    now: datetime
    result: dict[str, str]
    refs: dict[str, str]
    scope: str


@dataclass(frozen=True)
class StepRecord:
    status: str  # "pending" | "done"
    result: dict[str, str]


@dataclass
class Preloaded:
    """The delivery log of one sink's current batch: its events' steps, its incidents' refs."""

    sink: str | None = None
    events: set[str] = field(default_factory=set)
    scopes: set[str] = field(default_factory=set)
    steps: dict[tuple[str, str], StepRecord] = field(default_factory=dict)
    refs: dict[str, dict[str, str]] = field(default_factory=dict)

    def has_event(self, sink: str, event_id: str) -> bool:
        return sink == self.sink and event_id in self.events

    def has_scope(self, sink: str, scope: str) -> bool:
        return sink == self.sink and scope in self.scopes

    def confirmed(self, write: Confirmation) -> None:
        """Mirror a committed confirmation."""
        for event_id in write.event_ids:
            if self.has_event(write.sink, event_id):
                self.steps[(event_id, write.step)] = StepRecord("done", dict(write.result))
        if write.refs and self.has_scope(write.sink, write.scope):
            self.refs[write.scope].update(write.refs)


async def write_confirmations(conn: AsyncConnection, writes: Sequence[Confirmation]) -> None:
    """Every confirmation of a flush as two multi-row statements (later writes win)."""
    steps: dict[tuple[str, str, str], dict[str, Any]] = {}
    refs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for write in writes:
        for event_id in write.event_ids:
            steps[(write.sink, event_id, write.step)] = {
                "sink": write.sink,
                "event_id": event_id,
                "step": write.step,
                "incident_id": write.incident_id,
                "status": "done",
                "result": write.result,
                "started_at": write.now,
                "delivered_at": write.now,
            }
        for key, value in write.refs.items():
            refs[(write.sink, write.scope, key)] = {
                "sink": write.sink,
                "scope": write.scope,
                "key": key,
                "value": value,
                "updated_at": write.now,
            }
    if steps:
        stmt = dialect_insert(conn, sink_deliveries)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["sink", "event_id", "step"],
                set_={
                    "status": stmt.excluded.status,
                    "result": stmt.excluded.result,
                    "delivered_at": stmt.excluded.delivered_at,
                },
            ),
            list(steps.values()),
        )
    if refs:
        stmt = dialect_insert(conn, sink_refs)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["sink", "scope", "key"],
                set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
            ),
            list(refs.values()),
        )
