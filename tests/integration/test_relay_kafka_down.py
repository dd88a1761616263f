"""The outbox relay's publisher while Kafka is down: every round fails, and leaves nothing open.

The relay asks again every 0.2 s; a Kafka client whose start failed was never closed, so each round
left one behind ("Unclosed AIOKafkaConsumer", thousands a minute in the worker's log).
"""

import gc
import json
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from kafka_admin.topics import ensure_topic
from streams.relay import KafkaEventPublisher
from testkit.harness import PrivateKafka
from testkit.local import free_port

pytestmark = pytest.mark.integration


async def test_a_failed_start_leaves_no_client_open() -> None:
    publisher = KafkaEventPublisher(f"127.0.0.1:{free_port()}", "events", "relay", timeout=2)
    for _ in range(3):
        with pytest.raises((KafkaError, OSError)):
            await publisher.publish([("inc_1", b"{}")])
    gc.collect()  # an unclosed client warns when collected (warnings are errors here)


async def test_reading_the_tail_while_kafka_is_down_leaves_no_consumer_open(tmp_path: Path) -> None:
    kafka = PrivateKafka(tmp_path / "kafka-home").start()
    publisher = KafkaEventPublisher(kafka.bootstrap, "events", "relay", timeout=2)
    try:
        await ensure_topic(kafka.bootstrap, "events", 2)
        await publisher.publish([("inc_1", json.dumps({"event_id": "e1"}).encode())])
        assert await publisher.recent_event_ids(10) == {"e1"}
        kafka.stop()
        for _ in range(3):
            with pytest.raises((KafkaError, OSError)):
                await publisher.recent_event_ids(10)
        gc.collect()
    finally:
        kafka.stop()
        await publisher.close()
