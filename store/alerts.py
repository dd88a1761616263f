"""The alerts repository: the latest known state of every alert, by fingerprint.

Upserts are idempotent and order-safe: a record received earlier than the stored state never
overwrites it, so a redelivered or reordered record changes nothing.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from models.alert import AlertRecord
from store.schema import alerts, metadata

__all__ = ["AlertStore", "create_schema"]


def create_schema(engine: Engine) -> None:
    """Create missing tables (idempotent)."""
    metadata.create_all(engine)


def _row(record: AlertRecord) -> dict[str, Any]:
    return {
        "fingerprint": record.fingerprint,
        "status": record.status,
        "labels": record.labels,
        "annotations": record.annotations,
        "starts_at": record.starts_at,
        "ends_at": record.ends_at,
        "generator_url": record.generator_url,
        "receiver": record.receiver,
        "group_key": record.group_key,
        "external_url": record.external_url,
        "first_received_at": record.received_at,
        "last_received_at": record.received_at,
    }


class AlertStore:
    """Reads and writes the ``alerts`` table through an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._insert: Any = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:  # normalise_url admits no other back end
            raise ValueError(f"unsupported dialect {dialect}")

    async def upsert(self, record: AlertRecord) -> None:
        """Store ``record`` unless the stored state of that alert was received later."""
        row = _row(record)
        stmt = self._insert(alerts).values(**row)
        update = {k: stmt.excluded[k] for k in row if k not in {"fingerprint", "first_received_at"}}
        stmt = stmt.on_conflict_do_update(
            index_elements=[alerts.c.fingerprint],
            set_=update,
            where=alerts.c.last_received_at <= stmt.excluded.last_received_at,
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def get(self, fingerprint: str) -> dict[str, Any] | None:
        """The stored row of one alert, or None."""
        async with self._engine.connect() as conn:
            result = await conn.execute(select(alerts).where(alerts.c.fingerprint == fingerprint))
            row = result.mappings().first()
        return dict(row) if row is not None else None

    async def all(self) -> Sequence[dict[str, Any]]:
        """Every stored alert, ordered by fingerprint."""
        async with self._engine.connect() as conn:
            result = await conn.execute(select(alerts).order_by(alerts.c.fingerprint))
            return [dict(r) for r in result.mappings()]
