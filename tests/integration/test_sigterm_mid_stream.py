"""``sevflow run`` (receiver, worker, sinks) gets SIGTERM in the middle of a stream of notifications,
and starts again on the same topics, consumer groups and database.

Each role hands its work back cleanly: the receiver answers what it has started (then refuses new
connections, which Alertmanager retries), the worker commits only applied offsets, the sinks only
delivered ones. Expected after the restart: every notification answered 200 is stored, each
incident event is on the topic once, and each incident is paged once.
"""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from store.db import normalise_url
from store.schema import alerts, incident_events
from tests.fakes import fixtures
from tests.fakes.fixtures import ROUTING_KEY
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import Sevflow, wait_for
from tests.integration.test_kafka_outage import Sender
from tests.kafka_io import read_json_topic
from tests.store_backends import fresh_database

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert


def test_sigterm_mid_stream_then_restart_loses_and_doubles_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    fake_pagerduty: FakePagerDuty,
    tls_cert: Any,
) -> None:
    fresh_database(postgres_url, create=False)
    sevflow = Sevflow(tmp_path, kafka_bootstrap, postgres_url)
    sevflow.extra_env.update(
        SEVFLOW_TOPIC_PARTITIONS="2",
        SEVFLOW_QUIET_PERIOD_SECONDS="3600",
        SEVFLOW_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
        SEVFLOW_PAGERDUTY_BASE_URL=fake_pagerduty.url,
        SEVFLOW_PAGERDUTY_CA_FILE=str(tls_cert[0]),
    )
    engine = create_engine(normalise_url(postgres_url, asynchronous=False))

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(alerts)).scalar_one())

    def triggered() -> set[str]:
        return {e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger"}

    sender = Sender(f"{sevflow.url}/webhooks/alertmanager", sevflow.token, interval=0.05)
    try:
        sevflow.start()
        sender.start()
        wait_for(lambda: len(triggered()) >= 10, 60, f"the first pages (log {sevflow.log_path})")
        assert sevflow.process is not None
        sevflow.stop()  # SIGTERM to sevflow run, which passes it to every role
        assert sevflow.process.returncode == 0, sevflow.log_path.read_text()[-3000:]
        accepted_before = len(sender.accepted)
        sevflow.start()
        wait_for(
            lambda: len(sender.accepted) >= accepted_before + 20, 60, "notifications accepted again"
        )
        sender.stopping.set()
        sender.join(60)
        assert not sender.is_alive(), f"notifications never accepted: {sender.pending}"
        accepted = set(sender.accepted)
        wait_for(
            lambda: stored() == len(accepted), 60, f"every accepted alert stored ({sevflow.log_path})"
        )

        def published() -> bool:
            with engine.connect() as conn:
                pending = conn.execute(
                    select(func.count())
                    .select_from(incident_events)
                    .where(incident_events.c.published_at.is_(None))
                ).scalar_one()
            return pending == 0

        wait_for(published, 60, "every incident event published")
        wait_for(
            lambda: len(triggered()) == len(accepted), 60, f"every incident paged ({sevflow.log_path})"
        )
    finally:
        sender.stopping.set()
        sevflow.stop()

    print(f"sent {len(accepted)} ({accepted_before} before the stop), answers {sender.statuses}")
    with engine.connect() as conn:
        stored_ids = {r.event_id for r in conn.execute(select(incident_events.c.event_id))}
        names = {r.labels["alertname"] for r in conn.execute(select(alerts.c.labels))}
    engine.dispose()
    assert names == accepted
    events = asyncio.run(read_json_topic(kafka_bootstrap, f"e2e-events-{sevflow.suffix}"))
    ids = Counter(str(e["event_id"]) for e in events)
    assert [i for i, n in ids.items() if n > 1] == []
    assert set(ids) == stored_ids
    pages = Counter(e["dedup_key"] for e in fake_pagerduty.events if e["event_action"] == "trigger")
    assert [key for key, n in pages.items() if n > 1] == []
    assert len(pages) == len(accepted)
