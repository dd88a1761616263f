"""The relay's recovery reads the tail of the events topic on the real broker: records no sevflow
wrote there (another producer's bytes, JSON of another shape, a tombstone, brackets nested past
the stack) are read past, not failed on. Failing on one made every round fail, and no event was
published again while it stayed among the last records of its partition."""

import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from kafka_admin.topics import ensure_topic
from streams.relay import KafkaEventPublisher, event_id_of

pytestmark = pytest.mark.integration

_FOREIGN: list[bytes | None] = [
    b"\xff\xfe not json",
    b"[1, 2, 3]",
    b'{"event_id": 17}',
    b'{"no": "event id"}',
    b"[" * 100_000,
    None,
]


def test_the_event_id_of_foreign_records_is_none() -> None:
    assert [event_id_of(value) for value in _FOREIGN] == [None] * len(_FOREIGN)
    assert event_id_of(json.dumps({"event_id": "e1", "type": "opened"}).encode()) == "e1"


async def test_the_recovery_reads_past_foreign_records(kafka_bootstrap: str) -> None:
    topic = f"relay-foreign-{uuid.uuid4().hex[:8]}"
    await ensure_topic(kafka_bootstrap, topic, 1)
    publisher = KafkaEventPublisher(kafka_bootstrap, topic, f"relay-{topic}", timeout=30)
    foreign = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await foreign.start()
    try:
        await publisher.publish([("inc_1", json.dumps({"event_id": "e1"}).encode())])
        for value in _FOREIGN:
            await foreign.send_and_wait(topic, value, key=b"inc_1")
        await publisher.publish([("inc_1", json.dumps({"event_id": "e2"}).encode())])
        assert await publisher.recent_event_ids(50) == {"e1", "e2"}
    finally:
        await foreign.stop()
        await publisher.close()
