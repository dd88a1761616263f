"""The worker's fetches while records flow (streams/fetching.py), on the real test broker.

``adapt_fetches`` leans on aiokafka's fetcher: the two settings it reads for each request and the
answer of each fetch (whether it brought records). These tests hold a real consumer to that: the
fetches wait for more while records come, and are answered at the first record again once one
comes back empty; the worker's faust app builds its consumer that way only when asked.
"""

import asyncio
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from models.settings import Settings
from streams.app import _faust_app
from streams.fetching import FETCH_MIN_BYTES, FetchingApp, _Consumer, _FetchingThread, adapt_fetches
from testkit.kafka_io import create_topic

IDLE_WAIT_MS = 100


async def _until(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the fetcher never got there"
        await asyncio.sleep(0.01)


async def test_fetches_wait_for_more_while_records_flow_and_not_once_idle(
    kafka_bootstrap: str,
) -> None:
    topic = await create_topic(kafka_bootstrap, "fetching")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        fetch_max_wait_ms=IDLE_WAIT_MS,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        adapt_fetches(consumer, 0.25)
        fetcher = consumer._fetcher
        idle, flowing = (1, IDLE_WAIT_MS), (FETCH_MIN_BYTES, 250)
        assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == idle

        await producer.send_and_wait(topic, b"first")
        first = await consumer.getmany(timeout_ms=10_000)
        assert [r.value for records in first.values() for r in records] == [b"first"]
        # The fetch that brought it makes the next ones wait for more.
        assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == flowing

        # Records sent meanwhile come together, after the wait: all of them, none lost.
        for i in range(5):
            await producer.send_and_wait(topic, b"next-%d" % i)
        got: list[bytes] = []
        while len(got) < 5:
            batch = await consumer.getmany(timeout_ms=10_000)
            got += [r.value for records in batch.values() for r in records]  # type: ignore[misc]
        assert got == [b"next-%d" % i for i in range(5)]

        # Nothing more: a fetch comes back empty and the next ones are answered at once again.
        await _until(lambda: (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == idle)
        started = time.monotonic()
        await producer.send_and_wait(topic, b"after a quiet spell")
        again = await consumer.getmany(timeout_ms=10_000)
        assert [r.value for records in again.values() for r in records] == [b"after a quiet spell"]
        assert time.monotonic() - started < 0.25 + 1.0  # (not held for the flowing wait alone)
    finally:
        await producer.stop()
        await consumer.stop()


def test_the_worker_s_app_builds_its_consumer_with_the_setting(tmp_path: Path) -> None:
    async def build(wait: float) -> FetchingApp:
        settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, fetch_wait_seconds=wait)
        app = _faust_app(settings, {})
        assert isinstance(app, FetchingApp)
        assert app.transport.Consumer is _Consumer
        thread = app.consumer._thread
        assert isinstance(thread, _FetchingThread)
        thread.thread_loop.close()  # (the thread never started: its loop is closed here)
        return app

    assert asyncio.run(build(0.03)).fetch_wait == 0.03
    assert asyncio.run(build(0)).fetch_wait == 0
    assert Settings().fetch_wait_seconds == 0  # off unless asked for
