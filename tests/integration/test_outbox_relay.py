"""The outbox relay on the real broker: every event once, in order, even after a crash."""

import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from sqlalchemy import func, select

from kafka_admin.topics import ensure_topic
from models.incident import LifecyclePolicy
from store.incidents import IncidentStore
from store.schema import incident_events
from streams.pipeline import Pipeline
from streams.relay import KafkaEventPublisher, OutboxRelay
from streams.rules import load_rules
from testkit.harness import relay_lease_holder, role_env, wait_for
from testkit.kafka_io import read_json_topic
from testkit.local import REPO
from tests.builders import T0, alert

pytestmark = pytest.mark.integration


async def unpublished(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(incident_events)
            .where(incident_events.c.published_at.is_(None))
        )
        return int((await conn.execute(query)).scalar_one())


async def test_relay_publishes_each_event_once_across_a_crash(
    engine, relay_outbox, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    topic = f"test-events-{uuid.uuid4().hex[:8]}"
    await ensure_topic(kafka_bootstrap, topic, 4)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    await pipeline.process_alerts([alert(f"A{n}", instance="x") for n in range(20)])
    await pipeline.process_alerts(
        [
            alert(f"A{n}", instance="x", status="resolved", at=T0 + timedelta(minutes=1))
            for n in range(20)
        ]
    )
    assert await unpublished(engine) == 40

    publisher = KafkaEventPublisher(kafka_bootstrap, topic, f"{topic}-relay")
    relay = OutboxRelay(relay_outbox("worker-1"), publisher, batch_size=25)
    try:
        assert await relay.run_once(T0) == 25
        # Crash after Kafka acked the next batch but before it was marked published:
        # publish by hand, then "un-mark" nothing; a new relay must not send it again.
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(incident_events.c.incident_id, incident_events.c.document)
                    .where(incident_events.c.published_at.is_(None))
                    .order_by(incident_events.c.position)
                )
            ).all()
        await publisher.publish([(r.incident_id, r.document.encode()) for r in rows])
    finally:
        await publisher.close()

    # A second worker takes over after the first one's lease expired.
    publisher2 = KafkaEventPublisher(kafka_bootstrap, topic, f"{topic}-relay")
    relay2 = OutboxRelay(relay_outbox("worker-2"), publisher2, batch_size=25)
    try:
        assert await relay2.run_once(T0 + timedelta(seconds=5)) == 0  # lease still held by worker-1
        while await relay2.run_once(T0 + timedelta(seconds=20)):
            pass
    finally:
        await publisher2.close()
    assert await unpublished(engine) == 0

    events = await read_json_topic(kafka_bootstrap, topic)
    ids = [e["event_id"] for e in events]
    assert len(ids) == 40
    assert len(set(ids)) == 40
    by_incident: dict[object, list[object]] = {}
    for e in events:
        by_incident.setdefault(e["incident_id"], []).append(e["sequence"])
    assert all(seqs == sorted(seqs) for seqs in by_incident.values())


def test_a_worker_stopped_cleanly_gives_the_relay_lease_up(tmp_path: Path, kafka_bootstrap: str) -> None:
    """A SIGTERM'd worker releases the outbox lease, so the next worker relays at once instead of
    holding every event back until the lease expires."""
    suffix = uuid.uuid4().hex[:8]
    url = f"sqlite:///{tmp_path / 'sevflow.db'}"
    env = role_env(kafka_bootstrap, f"lease-{suffix}", url, tmp_path)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sevflow", "worker"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        held = wait_for(lambda: relay_lease_holder(url), 60, f"the relay to take its lease (log {log})")
        assert held.endswith(f":{process.pid}")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert relay_lease_holder(url) == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_relay_that_lost_its_lease_cannot_publish_after_the_next_holder(  # type: ignore[no-untyped-def]
    engine, relay_outbox, kafka_bootstrap: str
) -> None:
    """Relay A read a batch, then stalled past its lease (Kafka slow, its process paused); relay
    B took the lease over, read the tail and published that batch. When A's send comes, the batch
    must not reach the topic a second time: B's producer, sharing A's transactional id, fenced
    A's when it started."""
    topic = f"test-events-{uuid.uuid4().hex[:8]}"
    await ensure_topic(kafka_bootstrap, topic, 2)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    publisher_a = KafkaEventPublisher(kafka_bootstrap, topic, f"{topic}-relay")
    publisher_b = KafkaEventPublisher(kafka_bootstrap, topic, f"{topic}-relay")
    relay_a = OutboxRelay(relay_outbox("worker-a"), publisher_a)
    relay_b = OutboxRelay(relay_outbox("worker-b"), publisher_b)
    try:
        await pipeline.process_alerts([alert(f"F{n}", instance="x") for n in range(10)])
        assert await relay_a.run_once(T0) == 10
        await pipeline.process_alerts([alert(f"G{n}", instance="x") for n in range(5)])
        stalled = await relay_a._unpublished()  # A has read the batch ... and stalls
        assert len(stalled) == 5
        assert await relay_b.run_once(T0 + timedelta(seconds=20)) == 5  # A's lease has expired
        with pytest.raises(KafkaError):  # ... and sends it at last
            await publisher_a.publish([(r.incident_id, r.document.encode()) for r in stalled])
    finally:
        await publisher_a.close()
        await publisher_b.close()
    ids = [e["event_id"] for e in await read_json_topic(kafka_bootstrap, topic)]
    assert len(ids) == 15
    assert len(set(ids)) == 15
