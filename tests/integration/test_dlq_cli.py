"""``sevflow dlq`` through its real entry point."""

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_admin.topics import ensure_topics
from models.topics import TopicSpec
from sinks.dlq import DeadLetter, SourcePosition
from testkit.fakes.events import IncidentStory
from testkit.local import REPO, free_port

pytestmark = pytest.mark.integration


def sevflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        cwd=REPO,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_empty_dead_letter_topic_is_said_plainly(kafka_bootstrap: str) -> None:
    result = sevflow(
        "dlq",
        "list",
        SEVFLOW_KAFKA_BOOTSTRAP=kafka_bootstrap,
        SEVFLOW_SINKS_DLQ_TOPIC=f"dlq-{uuid.uuid4().hex[:8]}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no dead letters"


def test_unreachable_kafka_is_a_clear_error() -> None:
    result = sevflow("dlq", "list", SEVFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "not reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_without_a_readable_store_sends_nothing_and_says_why(kafka_bootstrap: str) -> None:
    """A replay reads the letters' incidents from the store (their later events follow them);
    with the store out of reach nothing is sent, and the password in the URL is not printed."""
    topic = f"dlq-{uuid.uuid4().hex[:8]}"
    events_topic = f"events-{uuid.uuid4().hex[:8]}"
    letter = _letter("pagerduty", "PagerDuty trigger: HTTP 400", events_topic)
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1), TopicSpec(events_topic, 1)]))
    asyncio.run(_produce(kafka_bootstrap, topic, letter.to_bytes()))
    result = sevflow(
        "dlq",
        "replay",
        SEVFLOW_KAFKA_BOOTSTRAP=kafka_bootstrap,
        SEVFLOW_SINKS_DLQ_TOPIC=topic,
        SEVFLOW_EVENTS_TOPIC=events_topic,
        SEVFLOW_DATABASE_URL=f"postgresql://sevflow:s3cretpw@127.0.0.1:{free_port()}/sevflow",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "sevflow dlq: nothing replayed: the incident store is not readable (OperationalError)"
    )
    assert "s3cretpw" not in result.stdout + result.stderr
    assert asyncio.run(_count(kafka_bootstrap, events_topic)) == 0


def test_records_no_sevflow_wrote_are_left_out_of_the_listings(kafka_bootstrap: str) -> None:
    """Another producer's records on the dead-letter and quarantine topics: each listing shows
    the records sevflow wrote and warns where the others sit, instead of failing on them."""
    topic, quarantine = f"dlq-{uuid.uuid4().hex[:8]}", f"quarantine-{uuid.uuid4().hex[:8]}"
    letter = _letter("slack", "Slack chat.postMessage: channel_not_found", "events")
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1), TopicSpec(quarantine, 1)]))
    for value in [b"not a dead letter", letter.to_bytes(), b"[" * 100_000]:
        asyncio.run(_produce(kafka_bootstrap, topic, value))
    asyncio.run(_produce(kafka_bootstrap, quarantine, b'{"what": "else"}'))
    env = {
        "SEVFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEVFLOW_SINKS_DLQ_TOPIC": topic,
        "SEVFLOW_ALERTS_QUARANTINE_TOPIC": quarantine,
    }
    letters = sevflow("dlq", "list", **env)
    assert letters.returncode == 0, letters.stderr
    assert str(letter.event_id) in letters.stdout
    assert "channel_not_found" in letters.stdout
    assert f"{topic}[0] offset 0 is not a dead letter" in letters.stderr
    assert f"{topic}[0] offset 2 is not a dead letter" in letters.stderr
    assert "Traceback" not in letters.stderr
    quarantined = sevflow("dlq", "list", "--quarantine", **env)
    assert quarantined.returncode == 0, quarantined.stderr
    assert quarantined.stdout.strip() == "no quarantined records"
    assert f"{quarantine}[0] offset 0 is not a quarantined record" in quarantined.stderr


def _letter(sink: str, reason: str, events_topic: str) -> DeadLetter:
    """A dead letter of an incident's opening, as the sinks write one."""
    event = IncidentStory().fire()[0]
    return DeadLetter(
        sink=sink,
        reason=reason,
        retryable=False,
        failed_at=event.occurred_at,
        source=SourcePosition(topic=events_topic, partition=0, offset=0),
        incident_id=event.incident_id,
        event_id=str(event.event_id),
        event=event,
    )


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _count(bootstrap: str, topic: str) -> int:
    """Records on ``topic``, of one partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()
