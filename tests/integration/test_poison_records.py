"""No record stops the pipeline: 1,000 good alerts with 5 poison records mixed in, written straight
to the alerts topic (as an older receiver release or a hostile producer would), through a real
worker on real Kafka, on SQLite and on PostgreSQL.

The 1,000 are stored, each incident is published once on incident-events and paged once (the sinks
role runs too, PagerDuty faked); the 5 are quarantined with their reason and original bytes,
listed by ``sevflow dlq list --quarantine`` and sent back by ``sevflow dlq replay --quarantine``
(quarantined again: they are still poison); the worker keeps running and never logs a label value.
"""

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine, func, select

from kafka_admin.topics import ensure_topic
from models.alert import FINGERPRINT_MAX
from store.db import normalise_url
from store.schema import incident_events
from streams.quarantine import EXIT_POISONED
from testkit.fakes import fixtures
from testkit.fakes.fixtures import ROUTING_KEY
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.harness import role_env, stored_alerts, wait_for
from testkit.kafka_io import read_json_topic
from testkit.local import REPO, free_port
from tests.builders import alert
from tests.integration.test_worker_failures import Worker

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert

GROUPS, PER_GROUP = 100, 10
SECRET = "poison-label-value-7f3a"


def good_records(at: datetime) -> list[tuple[bytes, bytes]]:
    """Received at ``at``: the escalation loop runs on the wall clock, and alerts received long
    ago would be escalated (more pages) while the test runs."""
    records = [
        alert(f"Group{g}", at=at, instance=f"i{n}", severity="warning")
        for g in range(GROUPS)
        for n in range(PER_GROUP)
    ]
    return [(r.fingerprint.encode(), r.to_bytes()) for r in records]


def poison_records() -> list[tuple[bytes, bytes]]:
    long = alert("Poison", instance="long").model_copy(
        update={"fingerprint": "f" * (FINGERPRINT_MAX + 1)}
    )
    nul = alert("Poison", instance="nul").model_copy(
        update={"labels": {"alertname": "P", "x": SECRET + "\x00"}}
    )
    return [
        (long.fingerprint.encode(), long.to_bytes()),
        (b"garbage", b"\xff{ not json at all"),
        (b"nul", nul.to_bytes()),
        (b"nested", b'{"labels": ' * 10_000),  # (json.loads raised RecursionError on it)
        # (json.loads returned the label as a string no UTF-8 text holds: the batch's write failed)
        (b"surrogate", nul.to_bytes().replace(b"\\u0000", b"\\ud800")),
    ]


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def sevflow_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def store_url(empty_store_url: str) -> str:
    return empty_store_url


def test_poison_is_quarantined_and_everything_else_flows(
    tmp_path: Path,
    kafka_bootstrap: str,
    store_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
) -> None:
    prefix = f"poison-{uuid.uuid4().hex[:8]}"
    env = role_env(kafka_bootstrap, prefix, store_url, tmp_path, quiet_period_seconds="3600")
    alerts_topic, quarantine_topic = f"{prefix}-alerts", f"{prefix}-alerts-quarantine"
    env |= {
        "SEVFLOW_ALERTS_QUARANTINE_TOPIC": quarantine_topic,
        "SEVFLOW_COMMANDS_QUARANTINE_TOPIC": f"{prefix}-commands-quarantine",
    }
    good, poison = good_records(datetime.now(UTC)), poison_records()
    mixed = (
        good[:100] + poison[:1] + good[100:500] + poison[1:2] + good[500:900] + poison[2:] + good[900:]
    )
    asyncio.run(ensure_topic(kafka_bootstrap, alerts_topic, 8))
    asyncio.run(produce(kafka_bootstrap, alerts_topic, mixed))
    asyncio.run(ensure_topic(kafka_bootstrap, f"{prefix}-commands", 8))
    asyncio.run(produce(kafka_bootstrap, f"{prefix}-commands", [(b"inc_x", b'{"action": "ack"}')]))

    engine = create_engine(normalise_url(store_url, asynchronous=False))

    def all_published() -> bool:
        with engine.connect() as conn:
            pending = conn.execute(
                select(func.count())
                .select_from(incident_events)
                .where(incident_events.c.published_at.is_(None))
            ).scalar_one()
            total = conn.execute(select(func.count()).select_from(incident_events)).scalar_one()
        return pending == 0 and total >= GROUPS

    def quarantined() -> list[dict[str, object]]:
        return asyncio.run(read_json_topic(kafka_bootstrap, quarantine_topic, idle_polls=2))

    def triggers() -> Counter[str]:
        return Counter(e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger")

    sinks_env = env | {
        "SEVFLOW_SINKS_GROUP_PREFIX": f"{prefix}-sink",
        "SEVFLOW_SINKS_DLQ_TOPIC": f"{prefix}-dlq",
        "SEVFLOW_STATUS_PAGE_PORT": str(free_port()),
        "SEVFLOW_SINKS_METRICS_PORT": "0",
        "SEVFLOW_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "SEVFLOW_PAGERDUTY_BASE_URL": fake_pagerduty.url,
        "SEVFLOW_PAGERDUTY_CA_FILE": str(tls_cert[0]),
        # 100 SEV3 incidents within a minute are a storm, which PagerDuty would get as one digest:
        # each incident is paged on its own here, to count the pages.
        "SEVFLOW_SINKS_STORM_THRESHOLD": "1000000",
    }
    worker = Worker(tmp_path, env, "worker").start()
    sinks = Worker(tmp_path, sinks_env, "sinks", role="sinks").start()
    try:
        wait_for(
            lambda: stored_alerts(engine) == GROUPS * PER_GROUP, 120, f"1,000 alerts ({worker.log})"
        )
        wait_for(all_published, 60, "every event published")
        wait_for(lambda: len(triggers()) >= GROUPS, 60, f"every incident paged ({sinks.log})")
        found = wait_for(lambda: (q := quarantined()) and len(q) >= 5 and q, 60, "5 quarantined")
        commands = wait_for(
            lambda: asyncio.run(
                read_json_topic(kafka_bootstrap, f"{prefix}-commands-quarantine", idle_polls=2)
            ),
            60,
            "the poison command quarantined",
        )
        listing = sevflow_cli(env, "dlq", "list", "--quarantine")
        replay = sevflow_cli(env, "dlq", "replay", "--quarantine")
        assert replay.returncode == 0, replay.stderr
        again = wait_for(lambda: (q := quarantined()) and len(q) >= 10 and q, 60, "replayed poison")
        assert worker.process is not None
        assert worker.process.poll() is None, "the worker stopped"
    finally:
        sinks.stop()
        worker.stop()

    # The 1,000 are stored, once, and each incident was published once.
    assert stored_alerts(engine) == GROUPS * PER_GROUP
    engine.dispose()
    events = asyncio.run(read_json_topic(kafka_bootstrap, f"{prefix}-events"))
    opened = Counter(e["incident_id"] for e in events if e["type"] == "opened")
    assert len(opened) == GROUPS
    assert set(opened.values()) == {1}
    # ... and paged once each: one PagerDuty alert per incident, on its dedup_key, and nothing
    # else. (An incident whose group grows to 5 instances becomes SEV2 and its trigger is sent
    # again with the same dedup_key: PagerDuty updates the open alert, no second page.)
    pages = Counter(a.dedup_key for a in fake_pagerduty.alerts)
    assert pages == Counter(dict.fromkeys(opened, 1))
    assert set(triggers()) == set(opened)

    # The 5 are quarantined with where they were read, why, and their bytes.
    assert len(found) == 5
    assert {base64.b64decode(str(q["value"])) for q in found} == {v for _, v in poison}
    assert {base64.b64decode(str(q["key"])) for q in found} == {k for k, _ in poison}
    assert {q["error"] for q in found} == {"undecodable"}
    assert all(q["source"]["topic"] == alerts_topic for q in found)  # type: ignore[index]
    reasons = sorted(str(q["reason"]) for q in found)
    assert any(r.startswith("invalid alert record: fingerprint: ") for r in reasons), reasons
    assert any(r.startswith("invalid alert record: labels: ") for r in reasons), reasons
    assert "invalid alert record: JSON nested too deeply" in reasons
    assert "invalid alert record: not valid UTF-8: a lone surrogate in labels.x" in reasons
    assert SECRET not in json.dumps([q["reason"] for q in found])
    [command] = commands
    assert command["source"]["topic"] == f"{prefix}-commands"  # type: ignore[index]
    assert command["error"] == "undecodable"
    # Listed, and replayed to the source topic (still poison, so quarantined again).
    assert listing.returncode == 0, listing.stderr
    assert sum(alerts_topic in line for line in listing.stdout.splitlines()) == 5
    assert sum(f"{prefix}-commands[" in line for line in listing.stdout.splitlines()) == 1
    assert "replayed 6 quarantined records" in replay.stdout
    assert len(again) == 10
    log = worker.log.read_text()
    assert SECRET not in log
    assert "quarantined poison record" in log
    assert "Traceback" not in log


def test_more_poison_in_a_row_than_the_limit_stops_the_worker_loudly(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A bad deploy must not quietly quarantine everything: past SEVFLOW_WORKER_POISON_LIMIT
    records in a row the worker exits with status 70, and the record that crossed the limit is
    not quarantined (it is read again at the next start)."""
    prefix = f"poisonlimit-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = role_env(kafka_bootstrap, prefix, url, tmp_path, worker_poison_limit="2", topic_partitions="1")
    env |= {
        "SEVFLOW_ALERTS_QUARANTINE_TOPIC": f"{prefix}-alerts-quarantine",
        "SEVFLOW_COMMANDS_QUARANTINE_TOPIC": f"{prefix}-commands-quarantine",
    }
    asyncio.run(ensure_topic(kafka_bootstrap, f"{prefix}-alerts", 1))
    asyncio.run(produce(kafka_bootstrap, f"{prefix}-alerts", [(b"k", b"not json")] * 3))
    worker = Worker(tmp_path, env, "worker").start()
    try:
        assert worker.process is not None
        status = worker.process.wait(120)
    finally:
        worker.stop()
    assert status == EXIT_POISONED
    found = asyncio.run(read_json_topic(kafka_bootstrap, f"{prefix}-alerts-quarantine", idle_polls=2))
    assert [q["source"]["offset"] for q in found] == [0, 1]  # type: ignore[index]
    assert "SEVFLOW_WORKER_POISON_LIMIT=2" in worker.log.read_text()


def quarantined_before_a_good_alert(
    tmp_path: Path, kafka_bootstrap: str, what: str, poison: tuple[bytes, bytes]
) -> dict[str, object]:
    """Run a worker over ``poison`` then one good alert; the quarantined record, once the good
    alert is stored (a worker stuck on the poison never stores it)."""
    prefix = f"poison{what}-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = role_env(kafka_bootstrap, prefix, url, tmp_path, topic_partitions="1")
    env |= {
        "SEVFLOW_ALERTS_QUARANTINE_TOPIC": f"{prefix}-alerts-quarantine",
        "SEVFLOW_COMMANDS_QUARANTINE_TOPIC": f"{prefix}-commands-quarantine",
    }
    asyncio.run(ensure_topic(kafka_bootstrap, f"{prefix}-alerts", 1))
    first_good = good_records(datetime.now(UTC))[:1]
    asyncio.run(produce(kafka_bootstrap, f"{prefix}-alerts", [poison, *first_good]))
    engine = create_engine(normalise_url(url, asynchronous=False))
    worker = Worker(tmp_path, env, "worker").start()
    try:
        wait_for(lambda: stored_alerts(engine) == 1, 90, f"the alert after it stored ({worker.log})")
        found = wait_for(
            lambda: asyncio.run(
                read_json_topic(kafka_bootstrap, f"{prefix}-alerts-quarantine", idle_polls=2)
            ),
            60,
            "the poison record quarantined",
        )
    finally:
        worker.stop()
        engine.dispose()
    [record] = found
    assert str(record["reason"])  # (and where it was read, in its source)
    assert record["source"] == {"topic": f"{prefix}-alerts", "partition": 0, "offset": 0}
    return record  # type: ignore[no-any-return]


def test_a_poison_record_too_large_to_carry_is_quarantined_without_its_bytes(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A poison record of 900,000 bytes, its base64 in a quarantined record over Kafka's record
    limit, was written again and again, refused each time as too large: the worker never moved
    past it. It is quarantined without its bytes, saying where they are, and the next alert
    is stored."""
    record = quarantined_before_a_good_alert(
        tmp_path, kafka_bootstrap, "huge", (b"huge", b"{" + b"x" * 900_000)
    )
    assert (record["kept"], record["value"], record["key"]) == (False, None, None)
    source = record["source"]
    assert isinstance(source, dict)
    assert f"are at {source['topic']}[0]@0" in str(record["reason"])


def test_a_poison_record_with_a_huge_key_is_quarantined_with_its_bytes(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A poison record with a 600,000-byte key: its quarantined record carried the key twice (as
    its Kafka key, and in base64 in the document), 1.4 MB, refused by Kafka, and the worker's
    agent crashed on it at every start. The key is now in the document only."""
    record = quarantined_before_a_good_alert(tmp_path, kafka_bootstrap, "key", (b"k" * 600_000, b"{"))
    assert record["kept"] is True
    assert base64.b64decode(str(record["key"])) == b"k" * 600_000
    assert base64.b64decode(str(record["value"])) == b"{"
