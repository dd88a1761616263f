"""The ``incident-events`` hop alone: the outbox relay's transactional publish → a sink's consumer.

One event per transaction, published by the relay's own :class:`streams.relay.KafkaEventPublisher`
(acks=all, idempotent, one transaction per batch), read by a consumer configured as the sinks'
(``read_committed``, offsets committed after each poll). Latency = the consumer's receipt minus
the start of the publish. Two paces, each next to a plain producer (acks=all, idempotent, no
transaction) in the same run:

* ``--gap`` between publishes (default 20 ms): what a page pays at the worker's pace;
* back to back: a transaction begun while the coordinator still writes the last one's markers is
  refused (``CONCURRENT_TRANSACTIONS``) and aiokafka retries it after 20 ms.

    .venv/bin/python -m bench.events_hop [--bootstrap 127.0.0.1:19092] [--events 300]

Prints figures only. Deletes the topics it made (run it alone on the broker, as the others).
"""

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.sinks_latency import percentiles
from kafka_admin.topics import ensure_topics
from models.topics import TopicSpec
from streams.relay import KafkaEventPublisher
from testkit.kafka_io import topics_swept

Publish = Callable[[str, bytes], Awaitable[None]]


async def _measure(bootstrap: str, topic: str, publish: Publish, events: int, gap: float) -> str:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-events-hop-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    received: dict[bytes, float] = {}
    expected: set[bytes] = {b"warm"}
    arrived = asyncio.Event()  # every expected value was received
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            now = time.monotonic()
            for messages in batch.values():
                for message in messages:
                    received.setdefault(message.value, now)
            if expected <= received.keys():
                arrived.set()
            if batch:
                await consumer.commit()

    await consumer.start()
    reader = asyncio.create_task(consume())
    try:
        await publish("warm", b"warm")
        async with asyncio.timeout(60):
            await arrived.wait()  # the consumer joined its group and reads
        sent: dict[bytes, float] = {}
        arrived.clear()
        expected.update(f"{topic}-{i}".encode() for i in range(events))
        for i in range(events):
            value = f"{topic}-{i}".encode()
            sent[value] = time.monotonic()
            await publish(f"incident-{i}", value)
            if gap:
                await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):  # what never arrived is left out of the figures
            async with asyncio.timeout(60):
                await arrived.wait()
    finally:
        stop.set()
        await reader
        await consumer.stop()
    return percentiles([received[v] - t for v, t in sent.items() if v in received])


async def _transactional(bootstrap: str, events: int, gap: float) -> str:
    topic = f"bench-events-hop-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 8)])
    publisher = KafkaEventPublisher(bootstrap, topic, f"bench-events-hop-{uuid.uuid4().hex[:8]}")

    async def publish(key: str, value: bytes) -> None:
        await publisher.publish([(key, value)])

    try:
        return await _measure(bootstrap, topic, publish, events, gap)
    finally:
        await publisher.close()


async def _plain(bootstrap: str, events: int, gap: float) -> str:
    topic = f"bench-events-hop-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 8)])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
    )
    await producer.start()

    async def publish(key: str, value: bytes) -> None:
        await (await producer.send(topic, key=key.encode(), value=value))

    try:
        return await _measure(bootstrap, topic, publish, events, gap)
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> None:
    for label, gap in ((f"{args.gap * 1000:.0f} ms apart", args.gap), ("back to back", 0.0)):
        print(f"{args.events} events, one per publish, {label}:")
        relay = await _transactional(args.bootstrap, args.events, gap)
        print(f"  {'relay (transaction each)':28s} {relay}")
        plain = await _plain(args.bootstrap, args.events, gap)
        print(f"  {'plain producer':28s} {plain}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=300, help="events per scenario")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between publishes")
    args = parser.parse_args()
    with topics_swept(args.bootstrap):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
