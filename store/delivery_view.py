"""What the delivery log (:mod:`store.deliveries`) keeps in memory and writes in batches.

:class:`Preloaded` is one sink's view of its current batch, read in one round trip and kept
current by this process's own writes (the only writer of those incidents' entries: a sink's
consumer group gives each incident's partition to one process at a time).
:func:`write_confirmations` writes every confirmation of a group commit as two multi-row
statements (built once: :mod:`store.prepared`), with the writes of other tables that commit with
them (:data:`Alongside`).
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from store.prepared import prepared
from store.sinks_schema import sink_deliveries, sink_refs
from store.upserts import dialect_insert

__all__ = ["Alongside", "Confirmation", "Preloaded", "StepRecord", "write_confirmations"]

#: A write of another table that commits with a confirmation, in its transaction: ``(apply,
#: item)``; a flush calls each ``apply`` once with the items of its confirmations that name it, in
#: their order, before writing the log (the built-in status page's change of its incident: the
#: page never shows a change its log does not hold as done, nor the reverse).
Alongside = tuple[Callable[[AsyncConnection, Sequence[Any]], Awaitable[None]], Any]


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
    alongside: Alongside | None = None


@dataclass(frozen=True)
class StepRecord:
    status: str  # "pending" | "done"
    result: dict[str, str]


@dataclass
class Preloaded:
    """The delivery log of one sink's recent batches: their events' steps, their incidents' refs.

    A batch adds its entries (re-read ones replace what the view held, whole): a lane still
    waiting for its turn when the next poll is read finds its entries here. Entries are dropped
    oldest first beyond a limit of events (and as many scopes); a dropped one is read from the
    database again. Kept entries stay exact because this process is their only writer while it
    owns their partitions, and a record polled again after a rebalance is read again.
    """

    sink: str | None = None
    #: event id -> step -> record; insertion order is age.
    events: dict[str, dict[str, StepRecord]] = field(default_factory=dict)
    #: scope -> its references; insertion order is age.
    refs: dict[str, dict[str, str]] = field(default_factory=dict)

    def has_event(self, sink: str, event_id: str) -> bool:
        return sink == self.sink and event_id in self.events

    def has_scope(self, sink: str, scope: str) -> bool:
        return sink == self.sink and scope in self.refs

    def step(self, event_id: str, step: str) -> StepRecord | None:
        return self.events[event_id].get(step)

    def add(
        self,
        sink: str,
        events: dict[str, dict[str, StepRecord]],
        refs: dict[str, dict[str, str]],
        limit: int,
    ) -> None:
        """Take a batch read from the database, keeping ``limit`` events and as many scopes at
        most (another sink's view is replaced)."""
        if sink != self.sink:
            self.sink, self.events, self.refs = sink, {}, {}
        for held, read in ((self.events, events), (self.refs, refs)):
            for key in read:
                held.pop(key, None)  # re-inserted as the newest
            held.update(read)  # type: ignore[arg-type]
            # The oldest first, without copying every key: the view holds thousands.
            for key in list(islice(held, max(0, len(held) - limit))):
                del held[key]

    def confirmed(self, write: Confirmation) -> None:
        """Mirror a committed confirmation."""
        for event_id in write.event_ids:
            if self.has_event(write.sink, event_id):
                self.events[event_id][write.step] = StepRecord("done", dict(write.result))
        if write.refs and self.has_scope(write.sink, write.scope):
            self.refs[write.scope].update(write.refs)


async def write_confirmations(conn: AsyncConnection, writes: Sequence[Confirmation]) -> None:
    """Every confirmation of a flush as two multi-row statements (later writes win), after the
    writes that commit with them."""
    together: dict[Callable[[AsyncConnection, Sequence[Any]], Awaitable[None]], list[Any]] = {}
    for write in writes:
        if write.alongside is not None:
            apply, item = write.alongside
            together.setdefault(apply, []).append(item)
    for apply, items in together.items():
        await apply(conn, items)
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
        await conn.execute(prepared(conn, _steps_upsert), list(steps.values()))
    if refs:
        await conn.execute(prepared(conn, _refs_upsert), list(refs.values()))


def _steps_upsert(conn: AsyncConnection) -> Any:
    stmt = dialect_insert(conn, sink_deliveries)
    return stmt.on_conflict_do_update(
        index_elements=["sink", "event_id", "step"],
        set_={
            "status": stmt.excluded.status,
            "result": stmt.excluded.result,
            "delivered_at": stmt.excluded.delivered_at,
        },
    )


def _refs_upsert(conn: AsyncConnection) -> Any:
    stmt = dialect_insert(conn, sink_refs)
    return stmt.on_conflict_do_update(
        index_elements=["sink", "scope", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    )
