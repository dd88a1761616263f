"""The receiver's publisher against the real broker: acknowledged, keyed by fingerprint, partitioned."""

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from kafka_admin.topics import ensure_topic
from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.kafka import KafkaAlertPublisher, PublishError
from testkit.local import free_port
from tests.conftest import load_fixture
from tests.unit.test_receiver_http import NOW

pytestmark = pytest.mark.integration


async def consume_all(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes, int]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list[tuple[bytes, bytes, int]] = []
    try:
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                seen.extend((m.key, m.value, m.partition) for m in messages)
            if len(seen) >= expected:
                # One more poll proves nothing extra was written.
                extra = await consumer.getmany(timeout_ms=500)
                seen.extend((m.key, m.value, m.partition) for ms in extra.values() for m in ms)
                break
    finally:
        await consumer.stop()
    return seen


async def test_publish_is_acknowledged_and_keyed(kafka_bootstrap: str) -> None:
    topic = f"test-alerts-{uuid.uuid4().hex[:8]}"
    publisher = KafkaAlertPublisher(kafka_bootstrap, topic, partitions=4, timeout=10)
    payload = WebhookPayload.model_validate(
        load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    )
    records = to_records(payload, NOW)
    try:
        await publisher.publish(records)
        assert await publisher.ready()
    finally:
        await publisher.close()
    seen = await consume_all(kafka_bootstrap, topic, len(records))
    assert sorted(k for k, _, _ in seen) == sorted(r.fingerprint.encode() for r in records)
    by_key = {r.fingerprint: r for r in records}
    assert all(AlertRecord.from_bytes(v) == by_key[k.decode()] for k, v, _ in seen)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(description["partitions"]) == 4


async def test_ensure_topic_is_idempotent(kafka_bootstrap: str) -> None:
    """A second call finds the topic and leaves it as it is: same partitions, records kept."""
    topic = f"test-topic-{uuid.uuid4().hex[:8]}"
    await ensure_topic(kafka_bootstrap, topic, 2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"kept", key=b"k")
    finally:
        await producer.stop()
    await ensure_topic(kafka_bootstrap, topic, 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        listed = [name for name in await admin.list_topics() if name == topic]
    finally:
        await admin.close()
    assert len(description["partitions"]) == 2
    assert listed == [topic]
    assert [(k, v) for k, v, _ in await consume_all(kafka_bootstrap, topic, 1)] == [(b"k", b"kept")]


async def test_unreachable_broker_is_a_publish_error() -> None:
    publisher = KafkaAlertPublisher(f"127.0.0.1:{free_port()}", "nowhere", 1, timeout=2)
    payload = WebhookPayload.model_validate(load_fixture("zulip__resolved_single_alert.json"))
    with pytest.raises(PublishError, match="Kafka unreachable"):
        await publisher.publish(to_records(payload, NOW))
    assert not await publisher.ready()
    await publisher.close()


async def test_retry_of_a_refused_payload_lands_once(kafka_bootstrap: str) -> None:
    """A payload refused while its records were still in flight, then retried: one copy each."""
    topic = f"test-alerts-{uuid.uuid4().hex[:8]}"
    publisher = KafkaAlertPublisher(kafka_bootstrap, topic, partitions=2, timeout=10)
    document = load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    first = to_records(WebhookPayload.model_validate(document), NOW)
    retry = to_records(WebhookPayload.model_validate(document), NOW.replace(minute=1))
    try:
        assert await publisher.ready()
        with pytest.raises(PublishError, match="in time"):
            # No time to wait for the acks: answered 503, but the records are already queued.
            await publisher.publish(first, ack_budget=0)
        assert len(publisher.ledger) == 3
        result = await publisher.publish(retry)
        assert (result.written, result.deduplicated) == (0, 3)
        fresh = first[0].model_copy(update={"status": "resolved"})
        assert (await publisher.publish([fresh])).written == 1
    finally:
        await publisher.close()
    seen = await consume_all(kafka_bootstrap, topic, 4)
    assert sorted(k for k, _, _ in seen) == sorted(
        [r.fingerprint.encode() for r in first] + [fresh.fingerprint.encode()]
    )
    assert {AlertRecord.from_bytes(v).received_at for _, v, _ in seen} == {NOW}


async def test_ready_asks_the_broker(kafka_bootstrap: str) -> None:
    topic = f"test-alerts-{uuid.uuid4().hex[:8]}"
    publisher = KafkaAlertPublisher(kafka_bootstrap, topic, partitions=1, timeout=10)
    try:
        assert await publisher.ready()
    finally:
        await publisher.close()


async def test_acknowledged_but_unanswered_payload_is_not_rewritten(kafka_bootstrap: str) -> None:
    topic = f"test-alerts-{uuid.uuid4().hex[:8]}"
    publisher = KafkaAlertPublisher(kafka_bootstrap, topic, partitions=2, timeout=10)
    document = load_fixture("zulip__firing_two_alerts_cpu_temp.json")
    records = to_records(WebhookPayload.model_validate(document), NOW)
    try:
        assert (await publisher.publish(records)).written == 2
        publisher.note_unanswered(records)  # the sender hung up before our 200
        assert (await publisher.publish(records)).deduplicated == 2
    finally:
        await publisher.close()
    assert len(await consume_all(kafka_bootstrap, topic, 2)) == 2
