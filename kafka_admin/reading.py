"""Reading a whole topic once, from each partition's start to the end it has when asked.

The operator commands that list what was set aside (the sinks' dead letters, the worker's
quarantine) read their topics this way; one reader for both, so the two listings cannot drift.
A record on such a topic that no sevflow wrote (another producer's bytes) is left out of the
listing with a warning naming where it sits (:func:`parsed`), instead of making the command fail
on it, and with it every record after it.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel, ValidationError

__all__ = ["TopicRecord", "parsed", "read_topics"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class TopicRecord:
    """One record read: where it sits and its value."""

    topic: str
    partition: int
    offset: int
    value: bytes


async def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()  # (inside: a failed start is closed too)
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if d.get("error_code", 0) == 0
        for p in d["partitions"]
    )


async def read_topics(bootstrap: str, topics: Sequence[str], wait_seconds: float) -> list[TopicRecord]:
    """Every record of ``topics`` (those that exist), by partition and offset; raises
    ``TimeoutError`` when they cannot be read to their end within ``wait_seconds``.

    A partition is done when the consumer's position reaches the end read at the start: by
    position, not by the last record returned, so a partition whose records were all removed by
    retention (start = end) or that ends with a transaction marker is not waited on for ever."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    records: list[TopicRecord] = []
    try:
        # Started inside: with Kafka down the start fails, and the consumer must be closed too.
        await consumer.start()
        tps = await _partitions(bootstrap, topics)
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        starts = await consumer.beginning_offsets(tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        async with asyncio.timeout(wait_seconds):
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, messages in batch.items():
                    records.extend(
                        TopicRecord(tp.topic, tp.partition, m.offset, m.value)
                        for m in messages
                        if m.offset < ends[tp] and m.value is not None
                    )
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return records


def parsed(records: Sequence[TopicRecord], model: type[M], what: str) -> list[tuple[TopicRecord, M]]:
    """Each record holding a ``model`` (JSON), with the record; the others are left out with a
    warning that says where they sit and what they are not (``what``)."""
    found = []
    for record in records:
        try:
            found.append((record, model.model_validate_json(record.value)))
        except ValidationError:
            log.warning(
                "%s[%d] offset %d is not %s (another producer's record?): left out",
                record.topic,
                record.partition,
                record.offset,
                what,
            )
    return found
