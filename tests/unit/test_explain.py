"""``sevflow explain``: what it says of an alert is what the pipeline would do with it."""

from pathlib import Path

from models.settings import Settings
from sevflow.explain import explain
from tests.store_backends import fresh_database


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
    )
    assert "severity:  SEV1 (Service completely down): data loss raises the SEV3 of rule " in text
    unmatched = explain(settings(tmp_path), {"alertname": "ReplicaLag"}, {"impact": "data loss"}, None)
    assert "severity:  SEV1 (default: no rule matched): data loss raises the SEV3 of the default" in (
        unmatched
    )
    plain = explain(settings(tmp_path), {"alertname": "ApiDown", "severity": "critical"}, {}, None)
    assert "severity:  SEV1 (Service completely down)\n" in plain
