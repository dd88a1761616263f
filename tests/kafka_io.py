"""Reading a whole topic of JSON records from the real broker, for assertions and benchmarks."""

import json
from typing import Any

from aiokafka import AIOKafkaConsumer

__all__ = ["read_json_topic", "read_timed_json_topic"]


async def read_timed_json_topic(
    bootstrap: str, topic: str, idle_polls: int = 4
) -> list[tuple[float, dict[str, Any]]]:
    """Every record of ``topic`` from the beginning as (Kafka timestamp in seconds, value),
    stopping after ``idle_polls`` empty polls."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
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
