"""The audit log in the store: one row per dangerous action (models/audit.py), never updated.

:func:`record` is the one way in, for every part that acts (the receiver's admin API, the CLI, the
worker applying a manual command, the status-page publishing): it writes in the caller's
transaction when given one, so an action and its record commit together.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.audit import ACTION_MAX, ACTOR_MAX, TARGET_MAX, AuditEntry
from store.db import reader
from store.schema import UTCDateTime, metadata

__all__ = ["audit_log", "listing", "record"]

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(ACTION_MAX), nullable=False),
    Column("actor", String(ACTOR_MAX), nullable=False),
    Column("via", String(32), nullable=False),
    Column("target", String(TARGET_MAX), nullable=True),
    Column("details", JSON, nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
)


def _values(entry: AuditEntry) -> dict[str, object]:
    return entry.model_dump(mode="python") | {"details": entry.model_dump(mode="json")["details"]}


async def record(target: AsyncEngine | AsyncConnection, entry: AuditEntry) -> None:
    """Write ``entry``: in ``target``'s transaction when it is a connection, else in its own."""
    statement = audit_log.insert().values(**_values(entry))
    if isinstance(target, AsyncConnection):
        await target.execute(statement)
        return
    async with target.begin() as conn:
        await conn.execute(statement)


async def listing(
    engine: AsyncEngine,
    *,
    since: datetime | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> Sequence[AuditEntry]:
    """Entries at or after ``since`` (all when None), of ``action`` (a prefix such as
    ``maintenance`` matches ``maintenance.created`` too), oldest first, at most ``limit`` (the
    newest ones)."""
    query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if action is not None:
        query = query.where((audit_log.c.action == action) | audit_log.c.action.startswith(f"{action}."))
    async with reader(engine).connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        AuditEntry.model_validate({k: v for k, v in row.items() if k != "id"}) for row in reversed(rows)
    ]
