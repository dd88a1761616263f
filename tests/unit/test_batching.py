"""The worker's batches (streams/batching.py) in a real faust app on the test broker.

Over a backlog a batch keeps gathering while the consumer's high watermark says more wait, so
batches come full even with a window far too short to fill one; at a steady rate nothing waits,
and a batch ends with its window. Either way every record is handed out once, in order, and
acknowledged: the offsets faust commits reach the end of the topic.
"""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from streams.batching import _Buffer
from testkit.faust_script import committed_offset, run_app
from testkit.kafka_io import create_topic

#: The agent: it takes ``batches_of`` the topic and emits each batch's offsets; ``finish()``
#: (testkit/faust_script.py) once COUNT records were handed out.
_AGENTS = """
from streams.batching import batches_of

topic, count, max_, window, longest = ARGS
count, max_, window, longest = int(count), int(max_), float(window), float(longest)
seen = []

@app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"))
async def take(stream):
    async for events in batches_of(stream, max_, window, longest, app.consumer.highwater):
        emit([e.message.offset for e in events])
        seen.extend(events)
        if len(seen) >= count:
            asyncio.get_running_loop().call_soon(finish)
"""


async def _produce(bootstrap: str, topic: str, count: int, pause: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, f"record {i}".encode())
            if pause:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def _batches(
    bootstrap: str, topic: str, count: int, max_: int, window: float, longest: float
) -> tuple[list[list[int]], int]:
    """The offsets of each batch handed out, and the offset the app's group committed."""
    group = f"test-batching-{uuid.uuid4().hex[:6]}"
    args = [topic, str(count), str(max_), str(window), str(longest)]
    batches = await run_app(bootstrap, group, _AGENTS, args)
    return batches, await committed_offset(bootstrap, group, topic)


@pytest.mark.integration
async def test_over_a_backlog_batches_come_full_with_a_short_window(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap, "batching")
    await _produce(kafka_bootstrap, topic, 2_000, 0)
    # A window of 2 ms could not fill a batch of 400 at faust's pace; the backlog lets it go on.
    batches, committed = await _batches(kafka_bootstrap, topic, 2_000, 400, 0.002, 10.0)
    assert [len(b) for b in batches] == [400] * 5
    assert [o for b in batches for o in b] == list(range(2_000))
    assert committed == 2_000


@pytest.mark.integration
async def test_at_a_steady_rate_a_batch_ends_with_its_window(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap, "batching")
    app = asyncio.ensure_future(_batches(kafka_bootstrap, topic, 40, 400, 0.03, 10.0))
    await asyncio.sleep(8)  # faust joins its group and is assigned the partition
    await _produce(kafka_bootstrap, topic, 40, 0.05)
    batches, committed = await app
    # One record every 50 ms (plus the acknowledgement's round trip), windows of 30 ms: nothing
    # waits in Kafka when a window ends, so no batch is held past it, where a window stretched
    # to its 10 s limit would have gathered them all.
    assert max(len(b) for b in batches) <= 2
    assert len(batches) >= 20
    assert [o for b in batches for o in b] == list(range(40))
    assert committed == 40


def test_a_batch_is_held_only_for_records_known_to_wait_in_its_partitions() -> None:
    marks: dict[str, int | None] = {"a": 11, "b": None}

    def highwater(tp: str) -> int | None:
        if tp == "revoked":
            raise AssertionError("Partition is not assigned")  # as aiokafka's highwater()
        return marks[tp]

    buffer = _Buffer(stream=None, max_=10, highwater=highwater)
    assert not buffer.waiting()  # nothing buffered
    buffer.last.update({"a": 10, "b": 3, "revoked": 7})
    assert not buffer.waiting()  # a: 10 is the newest; b: not known; revoked: not asked
    marks["a"] = 12
    assert buffer.waiting()  # offset 11 waits in a
