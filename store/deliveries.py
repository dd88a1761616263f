"""The sinks' repository: delivery log, external references, built-in status page.

The delivery log is checked before a vendor call and written after the vendor confirmed it
(Alertmanager's notification log), so a redelivered event never repeats an effect. A ``pending``
row written just before the call marks "the process may have died mid-call": the sink then asks
the vendor whether the effect happened (:meth:`DeliveryLog.begin` returns the earlier state)
instead of repeating it blindly.

Reads are the hot path (every event asks "done already?" before its call), so a sink worker
preloads the log for a whole polled batch in one round trip (:meth:`DeliveryLog.preload`): the
answers for those events and incidents then come from memory, and this process's own writes keep
that view current. The view is sound because a sink's consumer group gives each incident's
partition to one process at a time, the only writer of that incident's entries; the next preload
replaces it.

A step's name can hold a user's words (an escalation target's name); one longer than the column
is stored as its start and a hash of the whole (:func:`stored_step`), on every back end alike.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.chunking import chunks
from store.combining import GroupCommit
from store.db import reader
from store.sinks_schema import sink_deliveries, sink_refs, status_page_incidents

__all__ = ["DeliveryLog", "StatusPageRecord", "StatusPageStore", "StepRecord", "stored_step"]

#: Width of ``sink_deliveries.step`` (store/sinks_schema.py).
STEP_MAX = 64


def stored_step(step: str) -> str:
    """``step`` as the log keeps it: unchanged when it fits the column, else its start and 16 hex
    digits of its SHA-256 (unique in practice, and stable across processes and versions)."""
    if len(step) <= STEP_MAX:
        return step
    digest = hashlib.sha256(step.encode()).hexdigest()[:16]
    return f"{step[: STEP_MAX - 17]}#{digest}"


@dataclass(frozen=True)
class _Confirm:
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
class _Preloaded:
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

    def confirmed(self, write: _Confirm) -> None:
        """Mirror a committed confirmation."""
        for event_id in write.event_ids:
            if self.has_event(write.sink, event_id):
                self.steps[(event_id, write.step)] = StepRecord("done", dict(write.result))
        if write.refs and self.has_scope(write.sink, write.scope):
            self.refs[write.scope].update(write.refs)


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both PostgreSQL and SQLite."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


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

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._confirms = GroupCommit(
            engine,
            self._confirm_all,
            committed=self._mirror,
            max_batch=self.MAX_BATCH,
            linger=self.LINGER,
        )
        self._view = _Preloaded()

    async def preload(self, sink: str, event_ids: Sequence[str], scopes: Sequence[str]) -> None:
        """Read the steps of ``event_ids`` and the references of ``scopes`` in one round trip;
        later reads of those are answered from memory (replaces the previous preload)."""
        view = _Preloaded(sink=sink, events=set(event_ids), scopes=set(scopes))
        view.refs = {scope: {} for scope in view.scopes}
        async with self._reader.connect() as conn:
            for chunk in chunks(sorted(view.events)):
                rows = await conn.execute(
                    select(
                        sink_deliveries.c.event_id,
                        sink_deliveries.c.step,
                        sink_deliveries.c.status,
                        sink_deliveries.c.result,
                    ).where(sink_deliveries.c.sink == sink, sink_deliveries.c.event_id.in_(chunk))
                )
                for row in rows:
                    view.steps[(row.event_id, row.step)] = StepRecord(row.status, dict(row.result))
            for chunk in chunks(sorted(view.scopes)):
                rows = await conn.execute(
                    select(sink_refs.c.scope, sink_refs.c.key, sink_refs.c.value).where(
                        sink_refs.c.sink == sink, sink_refs.c.scope.in_(chunk)
                    )
                )
                for row in rows:
                    view.refs[row.scope][row.key] = row.value
        self._view = view

    async def step(self, sink: str, event_id: str, step: str) -> StepRecord | None:
        step = stored_step(step)
        if self._view.has_event(sink, event_id):
            return self._view.steps.get((event_id, step))
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
            return dict(self._view.refs[scope]), self._view.steps.get((event_id, step))
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
            stmt = _insert(conn, sink_deliveries).values(
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
            self._view.steps.setdefault((event_id, step), StepRecord("pending", {}))

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
        known = self._view.steps.get((event_id, step)) if self._view.has_event(sink, event_id) else None
        if known is not None and known.status == "pending":
            self._view.steps[(event_id, step)] = StepRecord("pending", dict(result))

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
    ) -> None:
        """Record a confirmed effect for each event (a coalesced post covers several) and the
        external ids it created, atomically; returns once committed.

        Confirmations arriving together (concurrent incidents) share one transaction — one
        commit, one fsync — instead of queueing for the database one by one.
        """
        write = _Confirm(sink, tuple(event_ids), stored_step(step), incident_id, now, dict(result or {}),
                         dict(refs or {}), scope or incident_id)  # fmt: skip
        await self._confirms.submit(write)

    def _mirror(self, writes: Sequence[_Confirm]) -> None:
        for write in writes:
            self._view.confirmed(write)

    @staticmethod
    async def _confirm_all(conn: AsyncConnection, writes: Sequence[_Confirm]) -> None:
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
            stmt = _insert(conn, sink_deliveries)
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
            stmt = _insert(conn, sink_refs)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["sink", "scope", "key"],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                ),
                list(refs.values()),
            )

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
            stmt = _insert(conn, sink_refs).values(
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
                rows = await conn.execute(
                    select(sink_refs.c.scope, sink_refs.c.key, sink_refs.c.value).where(
                        sink_refs.c.sink == sink, sink_refs.c.scope.in_(chunk)
                    )
                )
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
                stmt = _insert(conn, sink_refs).values(
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


@dataclass(frozen=True)
class StatusPageRecord:
    incident_id: str
    name: str
    status: str
    impact: str
    components: dict[str, str]
    updates: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


_Change = tuple[str, Callable[[StatusPageRecord | None], StatusPageRecord | None]]


class StatusPageStore:
    """The built-in status page's incidents."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._changes: GroupCommit[_Change] = GroupCommit(engine, self._apply, linger=DeliveryLog.LINGER)

    async def get(self, incident_id: str) -> StatusPageRecord | None:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(status_page_incidents).where(
                        status_page_incidents.c.incident_id == incident_id
                    )
                )
            ).first()
        return _record(row) if row else None

    async def change(
        self,
        incident_id: str,
        plan: Callable[[StatusPageRecord | None], StatusPageRecord | None],
    ) -> None:
        """Read one incident, let ``plan`` say what it becomes (None: unchanged), write it. The
        read and the write share one transaction (changes of one incident never interleave) with
        the other changes requested at the same time."""
        await self._changes.submit((incident_id, plan))

    async def _apply(self, conn: AsyncConnection, changes: Sequence[_Change]) -> None:
        ids = sorted({incident_id for incident_id, _ in changes})
        current: dict[str, StatusPageRecord | None] = dict.fromkeys(ids)
        for chunk in chunks(ids):
            # FOR UPDATE: on PostgreSQL two processes changing one incident (two sinks replicas'
            # follow-ups) then take turns, each planning from the other's result (SQLite's
            # BEGIN IMMEDIATE already serialises them; SQLAlchemy renders nothing there).
            rows = await conn.execute(
                select(status_page_incidents)
                .where(status_page_incidents.c.incident_id.in_(chunk))
                .with_for_update()
            )
            for row in rows:
                current[row.incident_id] = _record(row)
        changed: dict[str, StatusPageRecord] = {}
        for incident_id, plan in changes:
            record = plan(current[incident_id])
            if record is not None:
                current[incident_id] = changed[incident_id] = record
        await self._save_all(conn, list(changed.values()))

    async def save(self, record: StatusPageRecord) -> None:
        async with self._engine.begin() as conn:
            await self._save_all(conn, [record])

    @staticmethod
    async def _save_all(conn: AsyncConnection, records: Sequence[StatusPageRecord]) -> None:
        if not records:
            return
        stmt = _insert(conn, status_page_incidents)
        kept = ("incident_id", "created_at")
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["incident_id"],
                set_={
                    c.name: stmt.excluded[c.name] for c in status_page_incidents.c if c.name not in kept
                },
            ),
            [asdict(r) for r in records],  # the fields are the columns,
        )

    async def open_incidents(self) -> list[StatusPageRecord]:
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(status_page_incidents)
                .where(status_page_incidents.c.resolved_at.is_(None))
                .order_by(status_page_incidents.c.created_at.desc())
            )
            return [_record(r) for r in rows]

    async def resolved_since(self, since: datetime, limit: int = 50) -> list[StatusPageRecord]:
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(status_page_incidents)
                .where(status_page_incidents.c.resolved_at >= since)
                .order_by(status_page_incidents.c.resolved_at.desc())
                .limit(limit)
            )
            return [_record(r) for r in rows]


def _record(row: Any) -> StatusPageRecord:
    return StatusPageRecord(
        incident_id=row.incident_id,
        name=row.name,
        status=row.status,
        impact=row.impact,
        components=dict(row.components),
        updates=list(row.updates),
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
    )
