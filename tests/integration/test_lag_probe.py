"""The worker's lag probe measures again once a stopped broker is back.

Its aiokafka clients, kept from one measurement to the next, could fail for good after the
outage ("node which is not ready (node id None)"): the consumer-lag gauges froze and the stall
watch (streams/stall.py), which is fed by the probe, went blind.
"""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from receiver.kafka import ensure_topic
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


async def measure_until(
    probe: LagProbe, metrics: WorkerMetrics, tries: int
) -> dict[tuple[str, int], int]:
    for _ in range(tries):
        try:
            return await probe.update(metrics)
        except Exception:
            await asyncio.sleep(1)
    raise AssertionError(f"no measurement in {tries} tries")


def test_the_probe_measures_again_after_the_broker_restarts(private_kafka: PrivateKafka) -> None:
    kafka = private_kafka
    topic = "probe-alerts"

    async def scenario() -> None:
        await ensure_topic(kafka.bootstrap, topic, 1)
        await produce(kafka.bootstrap, topic, 3)
        probe = LagProbe(kafka.bootstrap, "probe-group", [topic], timeout=5)
        metrics = WorkerMetrics()
        try:
            assert await measure_until(probe, metrics, 10) == {(topic, 0): 3}
            await asyncio.to_thread(kafka.stop)
            with pytest.raises(Exception):  # noqa: B017,PT011 (whatever the client raises)
                await probe.update(metrics)
            await asyncio.to_thread(kafka.start)
            await produce(kafka.bootstrap, topic, 2)
            assert await measure_until(probe, metrics, 30) == {(topic, 0): 5}
        finally:
            await probe.close()

    asyncio.run(scenario())
