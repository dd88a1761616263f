"""Reading a whole topic of JSON records from the real broker, for assertions."""

import json

from aiokafka import AIOKafkaConsumer

__all__ = ["read_json_topic"]


async def read_json_topic(bootstrap: str, topic: str, idle_polls: int = 4) -> list[dict[str, object]]:
    """Every record of ``topic`` from the beginning, stopping after ``idle_polls`` empty polls."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[dict[str, object]] = []
    try:
        idle = 0
        while idle < idle_polls:
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            got = [json.loads(m.value) for ms in batch.values() for m in ms]
            out.extend(got)
            idle = 0 if got else idle + 1
    finally:
        await consumer.stop()
    return out
