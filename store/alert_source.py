"""Which alerts topic the stored positions belong to, and forgetting them for another one.

The worker orders an alert's records and recognises replays by their Kafka positions
(``partition_progress.next_offset``; each alert's ``kafka_partition`` and ``kafka_offset``,
models/incident/records.py ``superseded``). Those only compare within one topic: a topic deleted
and created again under its name (or another topic named in ``SEVFLOW_ALERTS_TOPIC``) starts
again at offset 0, and its records would look applied already or older than what is stored, and
be dropped though the receiver accepted them. So the store keeps the topic its positions came
from (name and Kafka's id, kafka_admin/topic_ids.py), and :func:`settle_source` forgets the
positions in the transaction that records another topic. The alerts' states, incidents and
record times stay: without a position an alert's records are ordered by ``received_at``, as for
a record that never had one.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.schema import alert_source, alerts, partition_progress
from store.upserts import dialect_insert

__all__ = ["SourceCheck", "settle_source"]

_SOURCE = "alerts"


@dataclass(frozen=True)
class SourceCheck:
    """What :func:`settle_source` found: ``previous`` is the topic recorded before, as
    ``(name, id)``, None the first time; ``forgot`` is True when the positions were forgotten."""

    previous: tuple[str, str] | None
    forgot: bool


async def settle_source(engine: AsyncEngine, topic: str, topic_id: str, now: datetime) -> SourceCheck:
    """Record ``topic`` (with Kafka's ``topic_id``) as where the stored positions come from;
    when another topic was recorded, forget its positions in the same transaction. Idempotent, and
    safe with several workers: the row is locked (PostgreSQL) or the write lock held (SQLite's
    ``BEGIN IMMEDIATE``) while it is compared, so the positions are forgotten once."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(alert_source.c.topic, alert_source.c.topic_id)
                .where(alert_source.c.source == _SOURCE)
                .with_for_update()
            )
        ).first()
        if row is None:
            await conn.execute(
                dialect_insert(conn, alert_source)
                .values(source=_SOURCE, topic=topic, topic_id=topic_id, since=now)
                .on_conflict_do_nothing(index_elements=["source"])
            )
            return SourceCheck(None, False)
        previous = (row.topic, row.topic_id)
        if previous == (topic, topic_id):
            return SourceCheck(previous, False)
        await conn.execute(
            update(alert_source)
            .where(alert_source.c.source == _SOURCE)
            .values(topic=topic, topic_id=topic_id, since=now)
        )
        await conn.execute(update(partition_progress).values(next_offset=None))
        await conn.execute(
            update(alerts)
            .where(alerts.c.kafka_partition.is_not(None))
            .values(kafka_partition=None, kafka_offset=None)
        )
        return SourceCheck(previous, True)
