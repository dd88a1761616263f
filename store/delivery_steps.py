"""The delivery log read back for one incident: every step each sink began or confirmed, for the
operator console's "Deliveries" (receiver/console/deliveries.py). Read-only; the log itself is
written by :class:`store.deliveries.DeliveryLog`."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import reader
from store.sinks_schema import sink_deliveries

__all__ = ["DeliveryStep", "incident_steps"]


@dataclass(frozen=True)
class DeliveryStep:
    """One row of the log: ``status`` ``pending`` (begun, not confirmed) or ``done``; ``result``
    what the vendor returned (ids, the channel), or the notes of a pending attempt."""

    sink: str
    event_id: str
    step: str
    status: str
    result: dict[str, str]
    started_at: datetime
    delivered_at: datetime | None


async def incident_steps(engine: AsyncEngine, incident_id: str) -> Sequence[DeliveryStep]:
    """Every sink's steps for ``incident_id``, oldest first."""
    columns = sink_deliveries.c
    async with reader(engine).connect() as conn:
        rows = await conn.execute(
            select(
                columns.sink,
                columns.event_id,
                columns.step,
                columns.status,
                columns.result,
                columns.started_at,
                columns.delivered_at,
            )
            .where(columns.incident_id == incident_id)
            .order_by(columns.started_at, columns.sink, columns.step)
        )
        return [
            DeliveryStep(
                r.sink,
                r.event_id,
                r.step,
                r.status,
                {str(k): str(v) for k, v in dict(r.result or {}).items()},
                r.started_at,
                r.delivered_at,
            )
            for r in rows
        ]
