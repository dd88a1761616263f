"""The built-in status page's own store: its incidents as the public page shows them.

Apart from the sinks' delivery log (:mod:`store.deliveries`): the page's incidents are what it
publishes, read by its HTTP server; the log is what the sinks did. A change reads an incident and
writes what a plan makes of it in one transaction, shared with the other changes requested at the
same time (:class:`store.combining.GroupCommit`): the follow-ups' own, or the delivery log's
confirmation of the change (:meth:`StatusPageStore.alongside`), so that the page and the log
commit together.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.chunking import chunks
from store.combining import GroupCommit
from store.db import reader
from store.delivery_view import Alongside
from store.prepared import prepared
from store.sinks_schema import status_page_incidents
from store.upserts import dialect_insert

__all__ = ["StatusPageRecord", "StatusPageStore"]

#: How long a change waits for others to share its transaction (seconds).
LINGER = 0.002


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


Plan = Callable[[StatusPageRecord | None], StatusPageRecord | None]
_Change = tuple[str, Plan]
#: The record's fields, which are the table's columns.
_COLUMNS = tuple(f.name for f in fields(StatusPageRecord))
#: Incidents read to be changed (built once: :mod:`store.prepared`).
_LOCKED = (
    select(status_page_incidents)
    .where(status_page_incidents.c.incident_id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)


class StatusPageStore:
    """The built-in status page's incidents."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = reader(engine)
        self._changes: GroupCommit[_Change] = GroupCommit(engine, _apply, linger=LINGER)

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

    async def change(self, incident_id: str, plan: Plan) -> None:
        """Read one incident, let ``plan`` say what it becomes (None: unchanged), write it. The
        read and the write share one transaction (changes of one incident never interleave) with
        the other changes requested at the same time."""
        await self._changes.submit((incident_id, plan))

    @staticmethod
    def alongside(incident_id: str, plan: Plan) -> Alongside:
        """The same change, to be written in the transaction of the delivery log's confirmation
        of it (:meth:`store.deliveries.DeliveryLog.confirm`)."""
        return (_apply, (incident_id, plan))

    async def save(self, record: StatusPageRecord) -> None:
        async with self._engine.begin() as conn:
            await _save_all(conn, [record])

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


async def _apply(conn: AsyncConnection, changes: Sequence[_Change]) -> None:
    ids = sorted({incident_id for incident_id, _ in changes})
    current: dict[str, StatusPageRecord | None] = dict.fromkeys(ids)
    for chunk in chunks(ids):
        # FOR UPDATE: on PostgreSQL two processes changing one incident (two sinks replicas'
        # follow-ups) then take turns, each planning from the other's result (SQLite's
        # BEGIN IMMEDIATE already serialises them; SQLAlchemy renders nothing there).
        rows = await conn.execute(_LOCKED, {"ids": chunk})
        for row in rows:
            current[row.incident_id] = _record(row)
    changed: dict[str, StatusPageRecord] = {}
    for incident_id, plan in changes:
        record = plan(current[incident_id])
        if record is not None:
            current[incident_id] = changed[incident_id] = record
    await _save_all(conn, list(changed.values()))


async def _save_all(conn: AsyncConnection, records: Sequence[StatusPageRecord]) -> None:
    if not records:
        return
    await conn.execute(
        prepared(conn, _upsert),
        # The fields are the columns (not dataclasses.asdict: it deep-copies every update).
        [{name: getattr(r, name) for name in _COLUMNS} for r in records],
    )


def _upsert(conn: AsyncConnection) -> Any:
    stmt = dialect_insert(conn, status_page_incidents)
    kept = ("incident_id", "created_at")
    return stmt.on_conflict_do_update(
        index_elements=["incident_id"],
        set_={c.name: stmt.excluded[c.name] for c in status_page_incidents.c if c.name not in kept},
    )


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
