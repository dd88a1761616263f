"""The worker's lag probe measures again once a stopped broker is back.

Its aiokafka clients, kept from one measurement to the next, could fail for good after the
outage ("node which is not ready (node id None)"): the consumer-lag gauges froze and the stall
watch (streams/stall.py), which is fed by the probe, went blind.
"""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from kafka_admin.topics import ensure_topic
from streams.metrics import LagProbe, WorkerMetrics
from testkit.harness import PrivateKafka

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, f"{n}".encode(), partition=0)
    finally:
        await producer.stop()


#: What the probe raises while the broker is away (kafka_admin.topics: the transient errors).
UNREACHABLE = (KafkaError, OSError, TimeoutError)


async def measure_until(
    probe: LagProbe, metrics: WorkerMetrics, expected: dict[tuple[str, int], int], within: float
) -> None:
    """Measure until the probe reports ``expected``; a broker still coming up (one of
    ``UNREACHABLE``) is retried, any other error fails the test, and so does ``within`` seconds."""
    deadline = time.monotonic() + within
    last: object = "no measurement"
    while time.monotonic() < deadline:
        try:
            last = await probe.update(metrics)
        except UNREACHABLE as e:
            last = e
        if last == expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no measurement of {expected} in {within:.0f}s; last: {last!r}")


def test_the_probe_measures_again_after_the_broker_restarts(private_kafka: PrivateKafka) -> None:
    kafka = private_kafka
    topic = "probe-alerts"

    async def scenario() -> None:
        await ensure_topic(kafka.bootstrap, topic, 1)
        await produce(kafka.bootstrap, topic, 3)
        probe = LagProbe(kafka.bootstrap, "probe-group", [topic], timeout=5)
        metrics = WorkerMetrics()
        try:
            await measure_until(probe, metrics, {(topic, 0): 3}, within=10)
            await asyncio.to_thread(kafka.stop)
            with pytest.raises(UNREACHABLE):
                await probe.update(metrics)
            await asyncio.to_thread(kafka.start)
            await produce(kafka.bootstrap, topic, 2)
            await measure_until(probe, metrics, {(topic, 0): 5}, within=30)
        finally:
            await probe.close()

    asyncio.run(scenario())
