"""``sevflow explain``: what it says of an alert is what the pipeline would do with it."""

import asyncio
from datetime import timedelta
from pathlib import Path

from models.maintenance import MaintenanceWindow
from models.settings import Settings
from sevflow.explain import explain
from store.db import async_engine
from store.maintenance import MaintenanceStore
from testkit.store_backends import fresh_database
from tests.builders import T0


def settings(tmp_path: Path) -> Settings:
    configured = Settings(data_dir=tmp_path)
    fresh_database(configured.sqlalchemy_url())
    return configured


def test_data_loss_is_named_as_what_raises_the_rule_severity(tmp_path: Path) -> None:
    text = explain(
        settings(tmp_path),
        {"alertname": "ReplicaLag", "severity": "warning"},
        {"impact": "data loss"},
        None,
        now=T0,
    )
    assert "severity:  SEV1 (Service completely down): data loss raises the SEV3 of rule " in text
    unmatched = explain(settings(tmp_path), {"alertname": "ReplicaLag"}, {"impact": "data loss"}, None)
    assert "severity:  SEV1 (default: no rule matched): data loss raises the SEV3 of the default" in (
        unmatched
    )
    plain = explain(settings(tmp_path), {"alertname": "ApiDown", "severity": "critical"}, {}, None)
    assert "severity:  SEV1 (Service completely down)\n" in plain


def test_an_active_maintenance_window_is_named(tmp_path: Path) -> None:
    configured = settings(tmp_path)
    window = MaintenanceWindow(
        id="mw_1",
        matchers=('service="checkout"',),
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        comment="database upgrade",
    )

    async def add() -> None:
        engine = async_engine(configured.sqlalchemy_url())
        try:
            await MaintenanceStore(engine).add(window)
        finally:
            await engine.dispose()

    asyncio.run(add())
    labels = {"alertname": "CheckoutDown", "service": "checkout"}
    held = explain(
        configured, labels, {}, '{}:{alertname="CheckoutDown"}', now=T0 + timedelta(minutes=5)
    )
    assert "maintenance: held by window mw_1 (database upgrade) until 2026-11-27 13:00 UTC" in held
    assert "a firing alert would open a new incident" in held
    after = explain(configured, labels, {}, '{}:{alertname="CheckoutDown"}', now=T0 + timedelta(hours=1))
    assert "maintenance" not in after
    other = explain(configured, {"alertname": "SearchSlow", "service": "search"}, {}, None, now=T0)
    assert "maintenance" not in other
