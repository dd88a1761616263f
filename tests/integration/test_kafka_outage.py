"""The broker stops while every role runs, and comes back with the same storage.

``sevflow run`` (receiver, worker, sinks) on a broker of the test's own (tests/harness.py
``PrivateKafka``), PostgreSQL as the store, PagerDuty faked. A sender that behaves like
Alertmanager (a new alert group every 0.1 s, each notification retried after ``Retry-After`` until
it is answered 2xx) keeps posting while the broker is stopped for several seconds and started
again. Expected: the receiver answers 503 with Retry-After while Kafka is down; once it is back
every group answered 200 is stored, its incident is published once on the incident-events topic
(event ids unique) and paged once, without restarting sevflow (a worker whose faust consumer
stalled would stop itself and ``sevflow run`` start it again).
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from models.fingerprint import fingerprint
from store.db import normalise_url
from store.schema import alerts, incident_events
from tests.fakes import fixtures
from tests.fakes.fixtures import ROUTING_KEY
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import PrivateKafka, Sevflow, wait_for
from tests.kafka_io import read_json_topic
from tests.store_backends import fresh_database

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def notification(alertname: str) -> dict[str, Any]:
    """A version 4 webhook payload: one firing SEV1 alert in a group of its own."""
    labels = {"alertname": alertname, "service": "api", "severity": "critical"}
    starts = (datetime.now(UTC) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "sevflow",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{alertname} is down"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.test/graph",
                # Alertmanager's fingerprint is the labels' hash, the same on every retry: a random
                # one made the late delivery of a notification answered 503 and its retry two
                # alerts (found stored twice).
                "fingerprint": fingerprint(labels),
            }
        ],
    }


class Sender(threading.Thread):
    """Posts one new group every ``interval`` and retries each like Alertmanager: on any answer
    but 2xx (or none), again after Retry-After (at least 0.5 s), until it is accepted."""

    def __init__(self, url: str, token: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.interval = url, token, interval
        self.accepted: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.retry_after_missing = 0
        self.pending: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        number = 0
        next_new = time.monotonic()
        retry_at: dict[str, float] = {}
        with httpx.Client(timeout=15, headers=headers) as client:
            while not (self.stopping.is_set() and not retry_at):
                now = time.monotonic()
                if not self.stopping.is_set() and now >= next_new:
                    name = f"Outage{number:04d}"
                    number += 1
                    retry_at[name] = now
                    next_new = now + self.interval
                for name, at in sorted(retry_at.items(), key=lambda item: item[1]):
                    if at > time.monotonic():
                        continue
                    try:
                        response = client.post(self.url, json=notification(name))
                        status = response.status_code
                        after = response.headers.get("Retry-After")
                    except httpx.HTTPError:
                        status, after = 0, None
                    with self.lock:
                        self.statuses[status] += 1
                        if 200 <= status < 300:
                            self.accepted.append(name)
                            del retry_at[name]
                        else:
                            if status == 503 and after is None:
                                self.retry_after_missing += 1
                            retry_at[name] = time.monotonic() + max(0.5, float(after or 0.5))
                    break  # one request per turn: new groups keep arriving during retries
                with self.lock:
                    self.pending = sorted(retry_at)
                time.sleep(0.02)

    def refused(self) -> int:
        with self.lock:
            return self.statuses[503]


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    broker = PrivateKafka(tmp_path / "kafka-home").start()
    try:
        yield broker
    finally:
        broker.stop()


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, kafka: PrivateKafka, postgres_url: str, fake_pagerduty: FakePagerDuty, tls_cert: Any
) -> None:
    fresh_database(postgres_url, create=False)
    sevflow = Sevflow(tmp_path, kafka.bootstrap, postgres_url)
    sevflow.extra_env.update(
        SEVFLOW_KAFKA_TIMEOUT_SECONDS="3",
        SEVFLOW_TOPIC_PARTITIONS="2",
        SEVFLOW_QUIET_PERIOD_SECONDS="3600",
        SEVFLOW_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        SEVFLOW_PAGERDUTY_BASE_URL=fake_pagerduty.url,
        SEVFLOW_PAGERDUTY_CA_FILE=str(tls_cert[0]),
        SEVFLOW_LOG_LEVEL="INFO",
        # Should faust's consumer never fetch again after the outage (faust-streaming #175), the
        # worker exits and sevflow run starts it again within the test's 60 s waits.
        SEVFLOW_WORKER_STALL_SECONDS="20",
    )
    engine = create_engine(normalise_url(postgres_url, asynchronous=False))

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def triggered() -> set[str]:
        return {e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger"}

    sender = Sender(f"{sevflow.url}/webhooks/alertmanager", sevflow.token)
    try:
        sevflow.start()
        sender.start()
        wait_for(lambda: len(triggered()) >= 5, 60, f"the first pages (log {sevflow.log_path})")

        kafka.stop()
        down_at = time.monotonic()
        refused_before = sender.refused()
        wait_for(
            lambda: sender.refused() >= refused_before + 5 and time.monotonic() - down_at >= 8,
            60,
            "notifications refused with 503 while the broker is down",
        )
        kafka.start()
        up_at = time.monotonic()
        at_restart = len(sender.accepted)
        wait_for(
            lambda: len(sender.accepted) >= at_restart + 20,
            60,
            f"notifications accepted again once the broker is back (log {sevflow.log_path})",
        )
        sender.stopping.set()
        sender.join(60)
        assert not sender.is_alive(), f"notifications never accepted: {sender.pending}"
        accepted = set(sender.accepted)

        try:
            wait_for(lambda: stored() == len(accepted), 60, "every accepted alert stored")
        except AssertionError:
            with engine.connect() as conn:
                names = {row[0]["alertname"] for row in conn.execute(select(alerts.c.labels))}
            raise AssertionError(
                f"{stored()} alerts stored, {len(accepted)} accepted; stored, not accepted: "
                f"{sorted(names - accepted)}; accepted, not stored: {sorted(accepted - names)}; "
                f"still pending: {sender.pending} (log {sevflow.log_path})"
            ) from None

        def published() -> bool:
            with engine.connect() as conn:
                pending = conn.execute(
                    select(func.count())
                    .select_from(incident_events)
                    .where(incident_events.c.published_at.is_(None))
                ).scalar_one()
            return pending == 0

        wait_for(published, 60, "every incident event published")
        wait_for(lambda: len(triggered()) == len(accepted), 60, "every incident paged")
        assert sevflow.process is not None
        assert sevflow.process.poll() is None, "a role exited (sevflow run stops with it)"
    finally:
        sender.stopping.set()
        sevflow.stop()

    print(
        f"sent {len(accepted)} groups, {sender.statuses} answers, down {up_at - down_at:.1f}s, "
        f"stored {stored()}"
    )
    assert sender.refused() > refused_before
    assert sender.retry_after_missing == 0
    assert set(sender.statuses) <= {200, 503}, sender.statuses
    with engine.connect() as conn:
        stored_ids = {r.event_id for r in conn.execute(select(incident_events.c.event_id))}
        names = {r.labels["alertname"] for r in conn.execute(select(alerts.c.labels))}
    engine.dispose()
    assert names == accepted
    events = asyncio.run(read_json_topic(kafka.bootstrap, f"e2e-events-{sevflow.suffix}"))
    ids = Counter(str(e["event_id"]) for e in events)
    assert [i for i, n in ids.items() if n > 1] == []
    assert set(ids) == stored_ids
    pages = Counter(e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger")
    assert [key for key, n in pages.items() if n > 1] == []
    assert len(pages) == len(accepted)
