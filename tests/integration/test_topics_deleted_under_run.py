"""A topic deleted under ``sevflow run``: the role that reads it stops, is started again and
creates it anew, and every alert accepted after that is paged, once.

The alerts topic is the hard case: offsets restart at 0 in the topic created again. Compared with
the positions stored for the old topic, its records looked applied already (or older than their
alert's stored state), and were dropped though the receiver had accepted them. The worker now
compares the topic's id with the one its positions came from before it applies a record
(streams/source_topics.py, store/alert_source.py).
"""

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from kafka_admin.topics import ensure_topics
from models.supervision import RoleStatus, loads
from models.topics import TopicSpec
from sevflow.supervise import STATUS_FILE
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import wait_for
from testkit.kafka_io import delete_topics
from tests.paged_run import PagedRun

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


async def _create_again(bootstrap: str, topic: str) -> None:
    """Create ``topic`` (2 partitions) as soon as Kafka has finished deleting it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topics(bootstrap, [TopicSpec(topic, 2)])
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("kind", "role", "exit_status", "at_once"),
    [
        ("events", "sinks", "status 1", False),
        ("alerts", "worker", "status 75", False),
        ("alerts", "worker", None, True),
        ("events", "sinks", None, True),
        ("commands", "worker", "status 75", False),
    ],
    ids=[
        "events-topic",
        "alerts-topic",
        "alerts-topic-created-again-at-once",
        "events-topic-created-again-at-once",
        "commands-topic",
    ],
)
def test_every_alert_is_paged_once_after_a_topic_is_deleted(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    kind: str,
    role: str,
    exit_status: str | None,
    at_once: bool,
) -> None:
    """10 groups paged, the topic deleted (and, ``at_once``, created again by hand at once),
    then 10 more groups: all 20 stored and paged once each. Without ``at_once`` the role reading
    the topic exits with ``exit_status`` naming the topic, and is started again."""
    run = PagedRun(
        tmp_path, kafka_bootstrap, f"sqlite:///{tmp_path / 'store.db'}", fake_pagerduty, tls_cert
    )
    sevflow = run.sevflow
    topic = f"e2e-{kind}-{sevflow.suffix}"
    status_file = tmp_path / "data" / STATUS_FILE

    def status() -> RoleStatus:
        return next(r for r in loads(status_file.read_text())[1] if r.role == role)

    try:
        sevflow.start()
        before = run.sender(interval=0.05, limit=10)
        before.start()
        wait_for(lambda: len(before.accepted) == 10, 60, "the first groups accepted")
        first = run.accepted_by(before)
        run.wait_until_settled(first)

        asyncio.run(delete_topics(kafka_bootstrap, {topic}))
        if at_once:
            asyncio.run(_create_again(kafka_bootstrap, topic))
        else:
            wait_for(
                lambda: (r := status()).restarts == 1 and r.state == "up",
                60,
                f"the {role} started again (log {sevflow.log_path})",
            )
        after = run.sender(interval=0.05, limit=10, first=10)
        after.start()
        wait_for(lambda: len(after.accepted) == 10, 60, "the next groups accepted")
        second = run.accepted_by(after)
        run.wait_until_settled(first | second)
        assert sevflow.process is not None
        assert sevflow.process.poll() is None
        text = sevflow.log_path.read_text()
        if exit_status is not None:
            assert status().last_exit == exit_status
            assert f"topic {topic} no longer exists" in text
        if kind == "alerts":
            assert f"the alerts topic {topic} (id " in text
            assert "the other topic's positions are forgotten" in text
    finally:
        run.close()
    pages = Counter(e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger")
    assert [key for key, n in pages.items() if n > 1] == []
    assert len(pages) == 20
