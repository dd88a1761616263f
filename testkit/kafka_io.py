"""Reading a whole topic of JSON records from the real broker, for assertions and benchmarks,
waiting until consumer groups have committed a whole topic, and creating and removing the topics
a test run or a benchmark uses."""

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

__all__ = [
    "behind",
    "create_topic",
    "delete_topics",
    "group_members",
    "read_json_topic",
    "read_timed_json_topic",
    "sweepable",
    "topic_names",
    "topics_swept",
    "wait_committed_through_end",
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


async def behind(
    bootstrap: str, topic: str, groups: Collection[str], *, transactional: bool = False
) -> dict[str, dict[int, int]]:
    """Per group, the partitions of ``topic`` whose committed offset is short of the end, and by
    how many offsets (a partition never committed counts from 0). The end is the last stable
    offset, as a ``read_committed`` consumer sees it. Empty: every group committed everything.

    ``transactional``: every record of ``topic`` is written in a transaction (incident-events,
    by the outbox relay). Each transaction ends with a commit marker, which takes an offset but is
    never given to a consumer, so the offset just before the last stable offset is a marker and a
    consumer that commits "its last record + 1" stops one short of the end: that is the end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await admin.start()
    await ends.start()
    try:
        (description,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
        end = await ends.end_offsets(partitions)
        if transactional:
            end = {tp: max(offset - 1, 0) for tp, offset in end.items()}
        out: dict[str, dict[int, int]] = {}
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            # A partition the group never committed is answered with offset -1, or left out.
            at = {tp: max(committed[tp].offset, 0) if tp in committed else 0 for tp in partitions}
            short = {tp.partition: end[tp] - at[tp] for tp in partitions}
            short = {p: n for p, n in short.items() if n > 0}
            if short:
                out[group] = short
        return out
    finally:
        await ends.stop()
        await admin.close()


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """The state of consumer group ``group`` as its coordinator tells it (``Stable``,
    ``PreparingRebalance``…) and how many members it counts, those waiting to be given
    partitions in a rebalance too."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        # DescribeGroups v0+: (error_code, group_id, state, protocol_type, protocol, members, ...)
        (described,) = response.groups
        return str(described[2]), len(described[5])
    finally:
        await admin.close()


async def wait_committed_through_end(
    bootstrap: str,
    topic: str,
    groups: Collection[str],
    within: float = 60.0,
    *,
    transactional: bool = False,
) -> None:
    """Wait until every one of ``groups`` has committed ``topic`` up to its end.

    For a consumer that commits a record only once it is done with it (sevflow's sinks commit a
    partition up to its oldest record not yet delivered, dead-lettered or skipped), this means
    every record produced before the call has been handled: nothing more can come of them, so a
    test may then assert that nothing extra happened. Fails after ``within`` seconds.
    ``transactional``: as :func:`behind`'s.
    """
    deadline = time.monotonic() + within
    while short := await behind(bootstrap, topic, groups, transactional=transactional):
        if time.monotonic() > deadline:
            raise AssertionError(f"not committed through the end of {topic} in {within:.0f}s: {short}")
        await asyncio.sleep(0.2)


async def create_topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    """A new topic ``prefix-<8 hex digits>`` of ``partitions`` on the broker; its name."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


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
