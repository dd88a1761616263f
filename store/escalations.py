"""The escalation repository: escalation state rows, the audit log, the loop's scan.

:func:`escalation_transaction` opens one transaction that holds both an
:class:`store.incidents.IncidentTx` (lock the incident, stage its events into the outbox) and an
:class:`EscalationTx` over the same connection, so an ``escalated`` event and the step it records
commit together or not at all. :meth:`EscalationTx.save` is a compare-and-set on ``version``: a
write based on a stale read raises :class:`StaleEscalation`, which rolls the whole transaction back
(its staged events included).
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.escalation import EscalationSnapshot, EscalationState, EscalationStatus, Firing
from models.events import IncidentEvent, IncidentState
from store.chunking import chunks
from store.db import reader
from store.driver_sql import Values, inserting, values_for
from store.escalation_schema import escalation_log, escalations
from store.incidents import IncidentTx
from store.schema import incidents

__all__ = [
    "EscalationRepo",
    "EscalationTx",
    "FiredStep",
    "PendingEscalation",
    "StaleEscalation",
    "escalation_transaction",
]

_OPEN = (EscalationStatus.ACTIVE.value, EscalationStatus.EXHAUSTED.value)
_TIMED = (*_OPEN, EscalationStatus.ACKNOWLEDGED.value)


class StaleEscalation(Exception):
    """The escalation row changed since it was read: this run lost the race and does nothing."""


def _columns(state: EscalationState, now: datetime) -> dict[str, Any]:
    """The row of ``state`` but its document."""
    return {
        "incident_id": state.incident_id,
        "escalation_id": state.escalation_id,
        "generation": state.generation,
        "status": state.status.value,
        "severity": state.severity.value,
        "started_at": state.started_at,
        "next_step": state.next_step,
        "seen_sequence": state.seen_sequence,
        "due_at": state.due_at,
        "security_notified": state.security_notified,
        "data_loss_notified": state.data_loss_notified,
        "acknowledged_at": state.acknowledged_at,
        "resolved_at": state.resolved_at,
        "version": state.version,
        "updated_at": now,
    }


def _row(state: EscalationState, now: datetime) -> dict[str, Any]:
    """The row as SQLAlchemy's column types take it."""
    return {**_columns(state, now), "document": state.model_dump(mode="json")}


_TIMES = ("started_at", "due_at", "acknowledged_at", "resolved_at", "updated_at")
_ROW_COLUMNS = tuple(c.name for c in escalations.columns)
_LOG_COLUMNS = tuple(c.name for c in escalation_log.columns)
_PRELOAD = select(escalations.c.incident_id, escalations.c.document).where(
    escalations.c.incident_id.in_(bindparam("ids", expanding=True))
)


def _new_row(state: EscalationState, now: datetime, values: Values) -> dict[str, Any]:
    """The row as the driver takes it (store/driver_sql.py): a new escalation is inserted by
    the worker in the transaction that opens its incident."""
    row = _columns(state, now)
    for name in _TIMES:
        row[name] = values.time(row[name])
    row["document"] = _document(state)
    return row


#: The JSON of snapshots written lately, by identity (the entry keeps its snapshot alive, so an
#: id is not reused while it is kept); cleared when full.
_SNAPSHOT_TEXTS: dict[int, tuple[EscalationSnapshot, str]] = {}
_SNAPSHOT_TEXTS_MAX = 1_024


def _document(state: EscalationState) -> str:
    """``state.model_dump_json()``, its snapshot's part written once per snapshot.

    The snapshot (the policy's plans for every severity, about 3 KB) is most of an escalation's
    document and the same object for every incident of the same services armed under the same
    policy (:meth:`models.escalation.EscalationPolicy.snapshot`); serialising it again for each
    new incident was a twelfth of opening one. The document's keys come in another order, which
    JSON readers do not see."""
    snapshot = state.snapshot
    kept = _SNAPSHOT_TEXTS.get(id(snapshot))
    if kept is None or kept[0] is not snapshot:
        if len(_SNAPSHOT_TEXTS) >= _SNAPSHOT_TEXTS_MAX:
            _SNAPSHOT_TEXTS.clear()
        kept = _SNAPSHOT_TEXTS[id(snapshot)] = (snapshot, snapshot.model_dump_json())
    rest = state.model_dump_json(exclude={"snapshot"})
    return f'{rest[:-1]},"snapshot":{kept[1]}}}'


class EscalationTx:
    """The escalation rows of one transaction (the caller holds the incident's lock)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._values = values_for(conn)
        self._preloaded: dict[str, EscalationState | None] = {}
        #: New escalation rows and log entries, written together by :meth:`flush`.
        self._new_rows: list[dict[str, Any]] = []
        self._new_log: list[dict[str, Any]] = []

    async def preload(self, incident_ids: Sequence[str]) -> None:
        """Read several incidents' escalations in one statement; :meth:`load` then answers for
        them from memory (once each: a second load reads the row again)."""
        found: dict[str, EscalationState | None] = dict.fromkeys(incident_ids)
        for chunk in chunks(incident_ids):
            rows = await self._conn.execute(_PRELOAD, {"ids": list(chunk)})
            for incident_id, document in rows.all():
                found[incident_id] = EscalationState.model_validate(document)
        self._preloaded.update(found)

    async def load(self, incident_id: str) -> EscalationState | None:
        if incident_id in self._preloaded:
            return self._preloaded.pop(incident_id)
        document = (
            await self._conn.execute(
                select(escalations.c.document).where(escalations.c.incident_id == incident_id)
            )
        ).scalar_one_or_none()
        return EscalationState.model_validate(document) if document is not None else None

    async def save(
        self, state: EscalationState, expected_version: int | None, now: datetime
    ) -> EscalationState:
        """Write ``state``: insert when ``expected_version`` is None, else update the row only if it
        still has that version. Returns the state as stored (its version advanced)."""
        if expected_version is None:
            stored = state.model_copy(update={"version": 1})
            self._new_rows.append(_new_row(stored, now, self._values))
            return stored
        await self.flush()  # the row being updated may be one inserted in this transaction
        stored = state.model_copy(update={"version": expected_version + 1})
        result = await self._conn.execute(
            update(escalations)
            .where(
                escalations.c.incident_id == state.incident_id,
                escalations.c.version == expected_version,
            )
            .values(_row(stored, now))
        )
        if result.rowcount != 1:
            raise StaleEscalation(f"escalation of {state.incident_id} changed under this run")
        return stored

    async def log(
        self, state: EscalationState, firing: Firing, event: IncidentEvent, now: datetime
    ) -> None:
        """Audit one firing; a second firing of the same step violates the primary key (when the
        transaction flushes)."""
        await self.record(state.escalation_id, state.incident_id, firing, event, now)

    async def fired(self, escalation_id: str, step: str) -> bool:
        """True when ``step`` of that escalation is in the audit log already."""
        await self.flush()
        found = await self._conn.execute(
            select(escalation_log.c.step).where(
                escalation_log.c.escalation_id == escalation_id, escalation_log.c.step == step
            )
        )
        return found.first() is not None

    async def record(
        self, escalation_id: str, incident_id: str, firing: Firing, event: IncidentEvent, now: datetime
    ) -> None:
        """Audit one firing of escalation ``escalation_id`` (armed by the loop or not: an
        escalation by hand is logged under the incident's episode)."""
        self._new_log.append(
            {
                "escalation_id": escalation_id,
                "step": firing.key,
                "incident_id": incident_id,
                "type": firing.type.value,
                "fired_at": self._values.time(now),
                "event_id": str(event.event_id),
                "reason": firing.reason,
                "targets": self._values.json([t.model_dump(exclude_none=True) for t in firing.targets]),
            }
        )

    async def flush(self) -> None:
        """Write the new rows and log entries, each kind in one statement."""
        rows, self._new_rows = self._new_rows, []
        entries, self._new_log = self._new_log, []
        await inserting(self._conn, escalations, _ROW_COLUMNS).run(self._conn, rows)
        await inserting(self._conn, escalation_log, _LOG_COLUMNS).run(self._conn, entries)


@asynccontextmanager
async def escalation_transaction(engine: AsyncEngine) -> AsyncIterator[tuple[IncidentTx, EscalationTx]]:
    """One write transaction for both the incident (lock, outbox) and its escalation row.

    Mirrors :meth:`store.incidents.IncidentStore.transaction` (staged incident changes are flushed
    on normal exit; an exception rolls everything back)."""
    async with engine.begin() as conn:
        tx, etx = IncidentTx(conn), EscalationTx(conn)
        yield tx, etx
        await etx.flush()
        await tx.flush()


@dataclass(frozen=True)
class PendingEscalation:
    """An escalation as ``sevflow escalations`` shows it."""

    state: EscalationState
    title: str
    incident_state: IncidentState


@dataclass(frozen=True)
class FiredStep:
    """One audited firing."""

    escalation_id: str
    step: str
    type: str
    fired_at: datetime
    reason: str
    targets: list[dict[str, str]]


class EscalationRepo:
    """Reads over the escalation tables, and the loop's scan."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def candidates(
        self, now: datetime, *, limit: int = 200, settle_horizon: timedelta = timedelta(hours=1)
    ) -> list[str]:
        """Incidents the loop must look at now, most overdue first:

        * to arm: triggered with no escalation yet; also acknowledged/resolved ones opened within
          ``settle_horizon`` that were never armed (opened and answered while no loop ran), so
          their times and SLA are still recorded;
        * due: an escalation whose ``due_at`` passed;
        * changed: the incident changed since the loop last examined it (its ``sequence`` moved:
          acknowledged, resolved, reopened, severity or security/data-loss flags changed), unless
          both the escalation and the incident are resolved.

        Only the incidents table's plain columns are read (never its document), so the scan is
        the same on PostgreSQL and SQLite.
        """
        inc, esc = incidents, escalations
        triggered = inc.c.state == IncidentState.TRIGGERED.value
        condition = or_(
            and_(esc.c.incident_id.is_(None), or_(triggered, inc.c.opened_at >= now - settle_horizon)),
            and_(esc.c.status.in_(_TIMED), esc.c.due_at <= now),
            and_(
                esc.c.seen_sequence != inc.c.sequence,
                or_(esc.c.status != EscalationStatus.RESOLVED.value, triggered),
            ),
        )
        query = (
            select(inc.c.id)
            .select_from(inc.outerjoin(esc, esc.c.incident_id == inc.c.id))
            .where(condition)
            .order_by(func.coalesce(esc.c.due_at, inc.c.opened_at), inc.c.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def get(self, incident_id: str) -> EscalationState | None:
        async with self._reader.connect() as conn:
            return await EscalationTx(conn).load(incident_id)

    async def pending(self, *, limit: int = 100) -> list[PendingEscalation]:
        """Escalations that may still fire something (a level or an SLA target), soonest first."""
        query = (
            select(escalations.c.document, incidents.c.title, incidents.c.state)
            .select_from(escalations.join(incidents, incidents.c.id == escalations.c.incident_id))
            .where(escalations.c.status.in_(_TIMED), escalations.c.due_at.is_not(None))
            .order_by(escalations.c.due_at, escalations.c.incident_id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            PendingEscalation(EscalationState.model_validate(doc), title, IncidentState(state))
            for doc, title, state in rows
        ]

    async def history(self, incident_id: str) -> Sequence[FiredStep]:
        """Everything that fired for an incident, in order."""
        query = (
            select(escalation_log)
            .where(escalation_log.c.incident_id == incident_id)
            .order_by(escalation_log.c.fired_at, escalation_log.c.escalation_id, escalation_log.c.step)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            FiredStep(r["escalation_id"], r["step"], r["type"], r["fired_at"], r["reason"], r["targets"])
            for r in rows
        ]
