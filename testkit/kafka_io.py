"""Reading a whole topic of JSON records from the real broker, for assertions and benchmarks,
and removing the topics a test run or a benchmark created."""

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

__all__ = [
    "delete_topics",
    "read_json_topic",
    "read_timed_json_topic",
    "sweepable",
    "topic_names",
    "topics_swept",
]


async def read_timed_json_topic(
    bootstrap: str, topic: str, idle_polls: int = 4
) -> list[tuple[float, dict[str, Any]]]:
    """Every record of ``topic`` from the beginning as (Kafka timestamp in seconds, value),
    stopping after ``idle_polls`` empty polls."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # as incident-events is to be read
    )
    await consumer.start()
    out: list[tuple[float, dict[str, Any]]] = []
    try:
        idle = 0
        while idle < idle_polls:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            got = [(m.timestamp / 1000, json.loads(m.value)) for ms in batch.values() for m in ms]
            out.extend(got)
            idle = 0 if got else idle + 1
    finally:
        await consumer.stop()
    return out


async def read_json_topic(bootstrap: str, topic: str, idle_polls: int = 4) -> list[dict[str, object]]:
    """Every record value of ``topic`` from the beginning."""
    return [value for _, value in await read_timed_json_topic(bootstrap, topic, idle_polls)]


async def topic_names(bootstrap: str) -> set[str]:
    """The names of every topic on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: set[str], chunk: int = 200) -> None:
    """Delete ``names`` from the broker, a bounded number per request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    await admin.start()
    try:
        ordered = sorted(names)
        for start in range(0, len(ordered), chunk):
            await admin.delete_topics(ordered[start : start + chunk], timeout_ms=60_000)
    finally:
        await admin.close()


def sweepable(before: set[str], after: set[str]) -> set[str]:
    """The topics that appeared between two listings, except the broker's own
    (``__consumer_offsets``, ``__transaction_state``…), which appear on first use and must stay."""
    return {name for name in after - before if not name.startswith("__")}


@contextlib.contextmanager
def topics_swept(bootstrap: str) -> Iterator[None]:
    """Delete, on the way out, every topic that appeared on the broker meanwhile.

    Every test and benchmark run names its topics uniquely, and faust adds changelog and assignor
    topics of its own. Left behind, they pile up by the thousand: a broker restarted over them
    spends a minute loading partitions and can run out of file descriptors and memory maps.
    Meant for a broker nothing else creates topics on meanwhile (the tests' own broker, or a
    benchmark run on a quiet machine).
    """
    before = asyncio.run(topic_names(bootstrap))
    try:
        yield
    finally:
        try:
            created = sweepable(before, asyncio.run(topic_names(bootstrap)))
            if created:
                asyncio.run(delete_topics(bootstrap, created))
        except (KafkaError, OSError, TimeoutError) as exc:
            # Housekeeping, not a result: say so and leave the topics.
            print(f"topics created meanwhile were not deleted: {exc!r}", file=sys.stderr)
