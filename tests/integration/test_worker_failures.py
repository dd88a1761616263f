"""Correctness under failure, on the real broker and PostgreSQL.

10,000 alert records (200 groups x 40 alerts, a quarter of them resolved later) are written to the alerts
topic. Worker 1 starts; worker 2 joins mid-run (a rebalance); worker 1 is killed with SIGKILL
mid-run (another rebalance once its session times out) and restarted. At the end every alert is
stored with its last status, every group has exactly one incident with the same figures as an
uninterrupted in-process run, and the incident-events topic holds each event exactly once, with
gap-free sequences, matching the stored timeline.
"""

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine, func, select

from kafka_admin.topics import ensure_topic
from models.alert import AlertRecord
from models.incident import LifecyclePolicy
from store.db import async_engine, normalise_url
from store.incidents import IncidentStore
from store.schema import alerts, incident_events, incidents
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.harness import role_env, stored_alerts, wait_for
from testkit.kafka_io import read_json_topic
from testkit.local import REPO
from testkit.store_backends import fresh_database
from tests.builders import alert

pytestmark = pytest.mark.integration

GROUPS, PER_GROUP, RESOLVE_EVERY = 200, 40, 4


RESOLVED_PER_GROUP = PER_GROUP // RESOLVE_EVERY


def make_records() -> list[AlertRecord]:
    t0 = datetime.now(UTC).replace(microsecond=0)
    firing = [
        alert(f"Group{g}", instance=f"i{n}", severity="warning", at=t0 + timedelta(milliseconds=g))
        for g in range(GROUPS)
        for n in range(PER_GROUP)
    ]
    resolved = [
        alert(
            f"Group{g}",
            instance=f"i{n}",
            severity="warning",
            status="resolved",
            at=t0 + timedelta(seconds=5),
        )
        for g in range(GROUPS)
        for n in range(0, PER_GROUP, RESOLVE_EVERY)
    ]
    return firing + resolved


class Worker:
    """``sevflow <role>`` (the worker unless ``role`` says otherwise) as a child process."""

    def __init__(self, workdir: Path, env: dict[str, str], name: str, role: str = "worker") -> None:
        self.log = workdir / f"{name}.log"
        self.env = env
        self.role = role
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sevflow", self.role],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def produce(bootstrap: str, topic: str, records: list[AlertRecord]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=r.fingerprint.encode(), value=r.to_bytes()) for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def reference(
    records: list[AlertRecord], url: str, policy: LifecyclePolicy
) -> dict[str, tuple[object, ...]]:
    """The same records through the pipeline in one process, no failures."""
    engine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(engine), load_rules(None), policy)
        for start in range(0, len(records), 500):
            await pipeline.process_alerts(records[start : start + 500])
        found = await pipeline.store.list_incidents(limit=10_000)
    finally:
        await engine.dispose()
    return {
        i.group_key: (i.state.value, i.severity.value, i.alerts_total, i.alerts_firing) for i in found
    }


def test_kill_and_rebalance_lose_and_double_nothing(
    tmp_path: Path, kafka_bootstrap: str, postgres_url: str
) -> None:
    fresh_database(postgres_url, create=False)
    suffix = uuid.uuid4().hex[:8]
    alerts_topic, events_topic = f"crash-alerts-{suffix}", f"crash-events-{suffix}"
    records = make_records()
    assert len(records) == 10_000
    asyncio.run(ensure_topic(kafka_bootstrap, alerts_topic, 8))
    asyncio.run(produce(kafka_bootstrap, alerts_topic, records))

    env = role_env(
        kafka_bootstrap,
        f"crash-{suffix}",
        postgres_url,
        tmp_path,
        alerts_topic=alerts_topic,
        events_topic=events_topic,
        quiet_period_seconds="3600",
        batch_size="200",
    )
    engine = create_engine(normalise_url(postgres_url, asynchronous=False))

    w1 = Worker(tmp_path, env | {"SEVFLOW_DATA_DIR": str(tmp_path / "w1")}, "worker1").start()
    w2 = Worker(tmp_path, env | {"SEVFLOW_DATA_DIR": str(tmp_path / "w2")}, "worker2")
    try:
        wait_for(
            lambda: stored_alerts(engine) >= 1000, 90, f"worker 1 to store 1,000 alerts (log {w1.log})"
        )
        w2.start()  # rebalance: partitions move while incidents are half built
        wait_for(lambda: stored_alerts(engine) >= 3000, 90, "3,000 alerts stored")
        w1.kill()  # SIGKILL mid-run; worker 2 takes its partitions after the session timeout
        at_kill = stored_alerts(engine)
        # Worker 2 goes on alone (its own partitions at once, worker 1's after the session
        # timeout) before worker 1 comes back.
        wait_for(
            lambda: stored_alerts(engine) > at_kill or at_kill == GROUPS * PER_GROUP,
            60,
            f"worker 2 storing alerts while worker 1 is dead (log {w2.log})",
        )
        w1.start()  # and it comes back: another rebalance

        def settled() -> bool:
            with engine.connect() as conn:
                resolved = conn.execute(
                    select(func.count()).select_from(alerts).where(alerts.c.status == "resolved")
                ).scalar_one()
                pending = conn.execute(
                    select(func.count())
                    .select_from(incident_events)
                    .where(incident_events.c.published_at.is_(None))
                ).scalar_one()
            return (
                stored_alerts(engine) == GROUPS * PER_GROUP
                and resolved == GROUPS * RESOLVED_PER_GROUP
                and pending == 0
            )

        wait_for(settled, 180, f"all alerts stored and all events published (logs {w1.log}, {w2.log})")
    finally:
        w1.stop()
        w2.stop()

    assert at_kill < GROUPS * PER_GROUP, "the kill came after the run was over: nothing tested"
    with engine.connect() as conn:
        rows = conn.execute(select(incidents.c.group_key, incidents.c.document)).all()
        stored_events = {r.event_id for r in conn.execute(select(incident_events.c.event_id))}
    engine.dispose()

    # Every group has exactly one incident, with the figures of an uninterrupted run.
    assert len(rows) == GROUPS
    documents = {r.group_key: json.loads(r.document) for r in rows}
    actual = {
        key: (d["state"], d["severity"], d["alerts_total"], d["alerts_firing"])
        for key, d in documents.items()
    }
    ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
    fresh_database(ref_url)
    assert actual == asyncio.run(
        reference(records, ref_url, LifecyclePolicy(quiet_period=timedelta(hours=1)))
    )
    assert {v[2:4] for v in actual.values()} == {(PER_GROUP, PER_GROUP - RESOLVED_PER_GROUP)}

    # The topic holds each stored event exactly once, with gap-free sequences per incident.
    events = asyncio.run(read_json_topic(kafka_bootstrap, events_topic))
    ids = Counter(str(e["event_id"]) for e in events)
    assert [i for i, n in ids.items() if n > 1] == []
    assert set(ids) == stored_events
    sequences: dict[object, list[int]] = defaultdict(list)
    for e in events:
        sequences[e["incident_id"]].append(int(e["sequence"]))  # type: ignore[call-overload]
    assert all(seq == list(range(1, len(seq) + 1)) for seq in sequences.values())
    # opened, 39 alert_added, 10 alert_resolved, and one severity_changed (5 instances: blast
    # radius) per incident; the escalation timer adds its own events (level 1 pages at once).
    alert_driven = Counter(
        str(e["type"]) for e in events if e["type"] not in {"escalated", "sla_breached"}
    )
    assert alert_driven == {
        "opened": GROUPS,
        "alert_added": GROUPS * (PER_GROUP - 1),
        "alert_resolved": GROUPS * RESOLVED_PER_GROUP,
        "severity_changed": GROUPS,
    }
    escalated = Counter(
        (e["incident_id"], e["data"]["level"]) for e in events if e["type"] == "escalated"
    )  # type: ignore[index]
    assert all(n == 1 for n in escalated.values()), "an escalation level fired twice"
