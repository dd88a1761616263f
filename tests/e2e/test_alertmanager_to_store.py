"""Alertmanager -> receiver -> Kafka -> worker -> store, on the real pieces, with amtool.

Runs once with the embedded SQLite store and once with PostgreSQL.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models.fingerprint import fingerprint
from store.db import sync_engine
from store.schema import alerts
from tests.harness import Alertmanager, Sevflow, wait_for
from tests.store_backends import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LABELS = {"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'e2e.db'}"
    url: str = request.getfixturevalue("postgres_url")
    fresh_database(url)
    return url


@pytest.fixture
def pipeline(
    tmp_path, kafka_bootstrap: str, database_url: str
) -> Iterator[tuple[Sevflow, Alertmanager]]:  # type: ignore[no-untyped-def]
    sevflow = Sevflow(tmp_path, kafka_bootstrap, database_url)
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


def test_fire_and_resolve_through_real_alertmanager(pipeline, database_url: str) -> None:  # type: ignore[no-untyped-def]
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
