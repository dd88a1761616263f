"""Alertmanager -> receiver -> Kafka -> worker -> store, on the real pieces, with amtool.

Runs once with the embedded SQLite store and once with PostgreSQL.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from models.events import Actor, IncidentEvent
from models.fingerprint import fingerprint
from models.incident import Command
from receiver.commands import CommandPublisher
from store.db import sync_engine
from store.schema import alerts, incidents
from testkit.harness import Alertmanager, Sevflow, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LABELS = {"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}


@pytest.fixture
def database_url(empty_store_url: str) -> str:
    return empty_store_url


@pytest.fixture
def pipeline(
    tmp_path, kafka_bootstrap: str, database_url: str
) -> Iterator[tuple[Sevflow, Alertmanager]]:  # type: ignore[no-untyped-def]
    sevflow = Sevflow(tmp_path, kafka_bootstrap, database_url)
    sevflow.extra_env.update(
        SEVFLOW_EVENTS_TOPIC=f"e2e-events-{sevflow.suffix}",
        SEVFLOW_COMMANDS_TOPIC=f"e2e-commands-{sevflow.suffix}",
        SEVFLOW_QUIET_PERIOD_SECONDS="0",
    )
    alertmanager = Alertmanager(tmp_path, f"{sevflow.url}/webhooks/alertmanager", token=sevflow.token)
    try:
        sevflow.start()
        alertmanager.start()
        yield sevflow, alertmanager
    finally:
        alertmanager.stop()
        sevflow.stop()


def stored_alert(url: str, fp: str) -> dict[str, Any] | None:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp)).mappings().first()
    except Exception:  # the worker may not have created the table yet
        return None
    finally:
        engine.dispose()
    return dict(row) if row else None


def test_fire_and_resolve_through_real_alertmanager(
    pipeline, database_url: str, kafka_bootstrap: str
) -> None:  # type: ignore[no-untyped-def]
    sevflow, alertmanager = pipeline
    label_args = [f"{k}={v}" for k, v in LABELS.items()]
    alertmanager.amtool(
        "alert",
        "add",
        *label_args,
        "--annotation=summary=Checkout is down",
        "--generator-url=http://prom.test/g",
    )
    fp = fingerprint(LABELS)
    fired = wait_for(
        lambda: stored_alert(database_url, fp),
        60,
        f"alert {fp} stored (sevflow log: {sevflow.log_path})",
    )
    assert fired["status"] == "firing"
    assert fired["labels"] == LABELS
    assert fired["annotations"] == {"summary": "Checkout is down"}
    assert fired["group_key"] == '{}:{alertname="CheckoutDown"}'
    assert fired["generator_url"] == "http://prom.test/g"
    assert fired["external_url"]
    assert fired["ends_at"] is None

    # Someone acknowledges through the commands topic (as the API, CLI and Slack do).
    ack = Command(
        command_id=f"ack-{sevflow.suffix}",
        action="acknowledge",
        incident_id=fired["incident_id"],
        actor=Actor(via="cli", name="alice"),
        requested_at=datetime.now(UTC),
    )
    asyncio.run(send_command(kafka_bootstrap, f"e2e-commands-{sevflow.suffix}", ack))
    wait_for(
        lambda: incident_state(database_url, fired["incident_id"]) == "acknowledged",
        60,
        f"incident acknowledged (sevflow log: {sevflow.log_path})",
    )

    end = datetime.now(UTC) - timedelta(seconds=1)
    alertmanager.amtool("alert", "add", *label_args, f"--end={end.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    resolved = wait_for(
        lambda: (row := stored_alert(database_url, fp)) and row["status"] == "resolved" and row,
        60,
        f"alert {fp} resolved (sevflow log: {sevflow.log_path})",
    )
    assert resolved["ends_at"] is not None
    assert resolved["first_received_at"] == fired["first_received_at"]
    assert resolved["last_received_at"] > fired["last_received_at"]
    assert "webhook" in alertmanager.log()

    # The incident opened and resolved, and every change reached the incident-events topic.
    incident_id = resolved["incident_id"]
    assert incident_id
    events = wait_for(
        lambda: (e := asyncio.run(read_events(kafka_bootstrap, sevflow))) and len(e) >= 5 and e,
        60,
        f"5 incident events on e2e-events-{sevflow.suffix}",
    )
    # The primary on-call is notified with the opening (the incident's first escalation level).
    assert [(e.type.value, e.sequence) for e in events] == [
        ("opened", 1),
        ("escalated", 2),
        ("acknowledged", 3),
        ("alert_resolved", 4),
        ("resolved", 5),
    ]
    assert events[1].data["level_name"] == "primary on-call"
    assert events[2].actor == Actor(via="cli", name="alice")
    assert {e.incident_id for e in events} == {incident_id}
    assert events[0].incident.severity.value == "SEV1"  # CheckoutDown + critical: service down
    assert events[0].incident.title == "Checkout is down"
    assert events[-1].incident.state.value == "resolved"


async def send_command(bootstrap: str, topic: str, command: Command) -> None:
    publisher = CommandPublisher(bootstrap, topic)
    try:
        await publisher.publish(command)
    finally:
        await publisher.close()


def incident_state(url: str, incident_id: str) -> str | None:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(incidents.c.state).where(incidents.c.id == incident_id)
            ).scalar_one_or_none()
    finally:
        engine.dispose()


async def read_events(bootstrap: str, sevflow: Sevflow) -> list[IncidentEvent]:
    consumer = AIOKafkaConsumer(
        f"e2e-events-{sevflow.suffix}",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
    return sorted(
        (IncidentEvent.from_bytes(m.value) for ms in batch.values() for m in ms),
        key=lambda e: e.sequence,
    )
