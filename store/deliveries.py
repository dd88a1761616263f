"""The sinks' delivery log: which effects happened, and the vendors' ids for each incident.

The delivery log is checked before a vendor call and written after the vendor confirmed it
(Alertmanager's notification log), so a redelivered event never repeats an effect. A ``pending``
row written just before the call marks "the process may have died mid-call": the sink then asks
the vendor whether the effect happened (:meth:`DeliveryLog.begin` returns the earlier state)
instead of repeating it blindly.

Reads are the hot path (every event asks "done already?" before its call), so a sink worker
preloads the log for a whole polled batch in one round trip (:meth:`DeliveryLog.preload`): the
answers for those events and incidents then come from memory, and this process's own writes keep
that view current. The view is sound because a sink's consumer group gives each incident's
partition to one process at a time, the only writer of that incident's entries; a record polled
again (after a rebalance) is read again by its batch's preload, which replaces what the view held
of it. Earlier batches' entries stay (up to :attr:`DeliveryLog.VIEW_MAX`): lanes wait for their
turn behind the sink's concurrency, and a view replaced by every poll sent them to the database
one query at a time.

A step's name can hold a user's words (an escalation target's name); one longer than the column
is stored as its start and a hash of the whole (:func:`stored_step`), on every back end alike.

The in-memory view and the batched confirmations are in :mod:`store.delivery_view`; the built-in
status page's own store in :mod:`store.status_page`.
"""

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.chunking import chunks
from store.combining import GroupCommit
from store.db import reader
from store.delivery_view import (
    Alongside,
    Confirmation,
    Preloaded,
    StepRecord,
    write_confirmations,
)
from store.sinks_schema import sink_deliveries, sink_refs
from store.upserts import dialect_insert

__all__ = ["Alongside", "DeliveryLog", "StepRecord", "stored_step"]

#: Width of ``sink_deliveries.step`` (store/sinks_schema.py).
STEP_MAX = 64
#: A batch's preload (built once: :mod:`store.prepared`).
_BATCH_STEPS = select(
    sink_deliveries.c.event_id,
    sink_deliveries.c.step,
    sink_deliveries.c.status,
    sink_deliveries.c.result,
).where(
    sink_deliveries.c.sink == bindparam("sink"),
    sink_deliveries.c.event_id.in_(bindparam("ids", expanding=True)),
)
_BATCH_REFS = select(sink_refs.c.scope, sink_refs.c.key, sink_refs.c.value).where(
    sink_refs.c.sink == bindparam("sink"), sink_refs.c.scope.in_(bindparam("scopes", expanding=True))
)


def stored_step(step: str) -> str:
    """``step`` as the log keeps it: unchanged when it fits the column, else its start and 16 hex
    digits of its SHA-256 (unique in practice, and stable across processes and versions)."""
    if len(step) <= STEP_MAX:
        return step
    digest = hashlib.sha256(step.encode()).hexdigest()[:16]
    return f"{step[: STEP_MAX - 17]}#{digest}"


class DeliveryLog:
    """Which (sink, event, step) effects happened, and the vendor's ids for each incident."""

    async def delivered(self, sink: str, event_ids: list[str]) -> set[str]:
        """Those of ``event_ids`` with at least one confirmed step for ``sink``."""
        found: set[str] = set()
        for chunk in chunks(event_ids):
            query = select(sink_deliveries.c.event_id).where(
                and_(
                    sink_deliveries.c.sink == sink,
                    sink_deliveries.c.event_id.in_(chunk),
                    sink_deliveries.c.status == "done",
                )
            )
            async with self._reader.connect() as conn:
                found.update((await conn.execute(query)).scalars().all())
        return found

    #: Confirmations written in one transaction at most.
    MAX_BATCH = 200
    #: How long a confirmation waits for others to share its transaction (seconds).
    LINGER = 0.002
    #: Events (and incidents) the batch view keeps at most: above the sink worker's open
    #: records (``max_pending``), so a lane waiting for its turn is still answered from memory.
    VIEW_MAX = 20_000

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._confirms = GroupCommit(
            engine,
            write_confirmations,
            committed=self._mirror,
            max_batch=self.MAX_BATCH,
            linger=self.LINGER,
        )
        self._view = Preloaded()

    async def preload(self, sink: str, event_ids: Sequence[str], scopes: Sequence[str]) -> None:
        """Read the steps of ``event_ids`` and the references of ``scopes`` in one round trip;
        later reads of those are answered from memory. The view keeps the earlier batches'
        entries (:data:`VIEW_MAX` events at most): a lane that waited for its turn meanwhile
        finds its own there; what is read again replaces what the view held."""
        events: dict[str, dict[str, StepRecord]] = {event_id: {} for event_id in event_ids}
        refs: dict[str, dict[str, str]] = {scope: {} for scope in scopes}
        async with self._reader.connect() as conn:
            for chunk in chunks(sorted(events)):
                rows = await conn.execute(_BATCH_STEPS, {"sink": sink, "ids": chunk})
                for row in rows:
                    events[row.event_id][row.step] = StepRecord(row.status, dict(row.result))
            for chunk in chunks(sorted(refs)):
                rows = await conn.execute(_BATCH_REFS, {"sink": sink, "scopes": chunk})
                for row in rows:
                    refs[row.scope][row.key] = row.value
        self._view.add(sink, events, refs, self.VIEW_MAX)

    async def step(self, sink: str, event_id: str, step: str) -> StepRecord | None:
        step = stored_step(step)
        if self._view.has_event(sink, event_id):
            return self._view.step(event_id, step)
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(sink_deliveries.c.status, sink_deliveries.c.result).where(
                        sink_deliveries.c.sink == sink,
                        sink_deliveries.c.event_id == event_id,
                        sink_deliveries.c.step == step,
                    )
                )
            ).first()
        return StepRecord(row.status, dict(row.result)) if row else None

    async def state(
        self, sink: str, scope: str, event_id: str, step: str
    ) -> tuple[dict[str, str], StepRecord | None]:
        """:meth:`refs` and :meth:`step` in one round trip (the hot path of every event)."""
        step = stored_step(step)
        if self._view.has_event(sink, event_id) and self._view.has_scope(sink, scope):
            return dict(self._view.refs[scope]), self._view.step(event_id, step)
        async with self._reader.connect() as conn:
            refs = await conn.execute(
                select(sink_refs.c.key, sink_refs.c.value).where(
                    sink_refs.c.sink == sink, sink_refs.c.scope == scope
                )
            )
            found = {row.key: row.value for row in refs}
            row = (
                await conn.execute(
                    select(sink_deliveries.c.status, sink_deliveries.c.result).where(
                        sink_deliveries.c.sink == sink,
                        sink_deliveries.c.event_id == event_id,
                        sink_deliveries.c.step == step,
                    )
                )
            ).first()
        return found, StepRecord(row.status, dict(row.result)) if row else None

    async def begin(self, sink: str, event_id: str, step: str, incident_id: str, now: datetime) -> None:
        """Mark the step as about to be attempted (kept if already there)."""
        step = stored_step(step)
        async with self._engine.begin() as conn:
            stmt = dialect_insert(conn, sink_deliveries).values(
                sink=sink,
                event_id=event_id,
                step=step,
                incident_id=incident_id,
                status="pending",
                result={},
                started_at=now,
            )
            await conn.execute(stmt.on_conflict_do_nothing())
        if self._view.has_event(sink, event_id):
            self._view.events[event_id].setdefault(step, StepRecord("pending", {}))

    async def note(self, sink: str, event_id: str, step: str, result: Mapping[str, str]) -> None:
        """Replace a pending step's notes (e.g. the channel name being tried)."""
        step = stored_step(step)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(sink_deliveries)
                .where(
                    sink_deliveries.c.sink == sink,
                    sink_deliveries.c.event_id == event_id,
                    sink_deliveries.c.step == step,
                    sink_deliveries.c.status == "pending",
                )
                .values(result=dict(result))
            )
        known = self._view.step(event_id, step) if self._view.has_event(sink, event_id) else None
        if known is not None and known.status == "pending":
            self._view.events[event_id][step] = StepRecord("pending", dict(result))

    async def confirm(
        self,
        sink: str,
        event_ids: Sequence[str],
        step: str,
        incident_id: str,
        now: datetime,
        *,
        result: Mapping[str, str] | None = None,
        refs: Mapping[str, str] | None = None,
        scope: str | None = None,
        alongside: Alongside | None = None,
    ) -> None:
        """Record a confirmed effect for each event (a coalesced post covers several) and the
        external ids it created, atomically; returns once committed. ``alongside``: the effect
        itself when it is a write of this database, committed in the same transaction.

        Confirmations arriving together (concurrent incidents) share one transaction — one
        commit, one fsync — instead of queueing for the database one by one.
        """
        write = Confirmation(
            sink,
            tuple(event_ids),
            stored_step(step),
            incident_id,
            now,
            dict(result or {}),
            dict(refs or {}),
            scope or incident_id,
            alongside,
        )
        await self._confirms.submit(write)

    def _mirror(self, writes: Sequence[Confirmation]) -> None:
        for write in writes:
            self._view.confirmed(write)

    async def refs(self, sink: str, scope: str) -> dict[str, str]:
        if self._view.has_scope(sink, scope):
            return dict(self._view.refs[scope])
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(sink_refs.c.key, sink_refs.c.value).where(
                    and_(sink_refs.c.sink == sink, sink_refs.c.scope == scope)
                )
            )
            return {row.key: row.value for row in rows}

    async def put_refs(self, sink: str, scope: str, refs: Mapping[str, str], now: datetime) -> None:
        async with self._engine.begin() as conn:
            await self._put_refs(conn, sink, scope, refs, now)
        if self._view.has_scope(sink, scope):
            self._view.refs[scope].update(refs)

    @staticmethod
    async def _put_refs(
        conn: AsyncConnection, sink: str, scope: str, refs: Mapping[str, str], now: datetime
    ) -> None:
        for key, value in refs.items():
            stmt = dialect_insert(conn, sink_refs).values(
                sink=sink, scope=scope, key=key, value=value, updated_at=now
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["sink", "scope", "key"], set_={"value": value, "updated_at": now}
                )
            )

    async def open_scopes(
        self, sink: str, *, key: str, status_key: str, closed: str
    ) -> dict[str, dict[str, str]]:
        """The references of each scope of ``sink`` holding ``key`` and a ``status_key`` other
        than ``closed`` (the status page's published, unresolved incidents). A scope without a
        ``status_key`` is left out: its state is unknown. Two queries on the primary key's
        ``sink`` prefix: the matching scopes, then their references."""
        found = sink_refs.alias("found")
        status = sink_refs.alias("status")
        query = (
            select(found.c.scope)
            .join(
                status,
                and_(
                    status.c.sink == found.c.sink,
                    status.c.scope == found.c.scope,
                    status.c.key == status_key,
                ),
            )
            .where(found.c.sink == sink, found.c.key == key, status.c.value != closed)
        )
        async with self._reader.connect() as conn:
            scopes = sorted((await conn.execute(query)).scalars())
            refs: dict[str, dict[str, str]] = {scope: {} for scope in scopes}
            for chunk in chunks(scopes):
                rows = await conn.execute(_BATCH_REFS, {"sink": sink, "scopes": chunk})
                for row in rows:
                    refs[row.scope][row.key] = row.value
        return refs

    async def swap_ref(
        self, sink: str, scope: str, key: str, expected: str | None, value: str, now: datetime
    ) -> bool:
        """Set ``key`` to ``value`` only if it still is ``expected`` (None: absent); True when it
        was set. A claim: of several processes swapping the same value, one wins."""
        async with self._engine.begin() as conn:
            if expected is None:
                stmt = dialect_insert(conn, sink_refs).values(
                    sink=sink, scope=scope, key=key, value=value, updated_at=now
                )
                result = await conn.execute(stmt.on_conflict_do_nothing())
            else:
                result = await conn.execute(
                    update(sink_refs)
                    .where(
                        sink_refs.c.sink == sink,
                        sink_refs.c.scope == scope,
                        sink_refs.c.key == key,
                        sink_refs.c.value == expected,
                    )
                    .values(value=value, updated_at=now)
                )
        swapped = bool(result.rowcount == 1)
        if swapped and self._view.has_scope(sink, scope):
            self._view.refs[scope][key] = value
        return swapped

    async def scopes_with_key(self, sink: str, prefix: str, key: str) -> list[str]:
        """The scopes starting with ``prefix`` that hold ``key`` (a storm's member incidents)."""
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(sink_refs.c.scope).where(
                    sink_refs.c.sink == sink,
                    sink_refs.c.key == key,
                    sink_refs.c.scope.startswith(prefix, autoescape=True),
                )
            )
            return sorted(rows.scalars())

    async def delivered_count(self, sink: str, incident_id: str) -> int:
        """Confirmed steps for one incident (tests and diagnostics)."""
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(sink_deliveries.c.step).where(
                    sink_deliveries.c.sink == sink,
                    sink_deliveries.c.incident_id == incident_id,
                    sink_deliveries.c.status == "done",
                )
            )
            return len(rows.all())
