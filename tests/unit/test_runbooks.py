"""Runbooks by incident type: the shipped four match the playbook's alerts, fill their commands
from the labels, a user's folder adds or overrides, and a bad file fails naming file and line."""

from pathlib import Path

import pytest

from models.events import EventType
from models.runbooks import RunbookError, parse_runbook
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from streams.runbooks import load_runbooks
from tests.builders import alert
from tests.unit.test_pipeline_store import POLICY

RULES = load_rules(None)
SHIPPED = load_runbooks(None)


def matched(labels: dict[str, str], annotations: dict[str, str] | None = None) -> str | None:
    notes = annotations or {}
    found = SHIPPED.match(labels, notes, RULES.classify(labels, notes))
    return found.name if found is not None else None


@pytest.mark.parametrize(
    ("labels", "annotations", "runbook"),
    [
        # Runbook: Service Unavailable (5xx errors): health check 503, error rate, service down.
        ({"alertname": "HighErrorRate", "severity": "critical"}, {}, "service-unavailable"),
        ({"alertname": "Http5xxRatio", "severity": "warning"}, {}, "service-unavailable"),
        ({"alertname": "CheckoutDown", "severity": "critical"}, {}, "service-unavailable"),
        # Runbook: Database Issues: slow queries, connection timeouts, too many connections.
        ({"alertname": "PostgresTooManyConnections"}, {}, "database-issues"),
        ({"alertname": "DatabaseSlowQueries"}, {}, "database-issues"),
        ({"alertname": "PostgresDown", "severity": "critical"}, {}, "database-issues"),
        # Runbook: High Latency: P95 latency > 500ms.
        ({"alertname": "HighLatencyP95", "severity": "warning"}, {}, "high-latency"),
        ({"alertname": "SlowResponseTime"}, {}, "high-latency"),
        # Runbook: Security Incident: failed authentication, unauthorized data access.
        ({"alertname": "FailedLoginSpike", "security": "true"}, {}, "security-incident"),
        ({"alertname": "CustomerDataExfiltration"}, {}, "security-incident"),
        (
            {"alertname": "ApiErrors"},
            {"impact": "unauthorized data access to customer records"},
            "security-incident",
        ),
    ],
)
def test_each_shipped_runbook_matches_the_playbooks_alerts(
    labels: dict[str, str], annotations: dict[str, str], runbook: str
) -> None:
    assert matched(labels, annotations) == runbook


def test_an_alert_of_no_type_gets_no_runbook() -> None:
    assert matched({"alertname": "DiskAlmostFull", "severity": "warning"}) is None


def test_commands_are_filled_from_the_labels_and_the_rest_stay_visible() -> None:
    labels = {"alertname": "HighErrorRate", "namespace": "shop", "deployment": "checkout-api"}
    cls = RULES.classify(labels, {})
    runbook = SHIPPED.for_alert(labels, {"runbook_url": "https://wiki.test/5xx"}, cls)
    assert runbook is not None
    assert runbook.title == "Service Unavailable (5xx errors)"
    assert "kubectl get pods -n shop\n" in runbook.text
    assert "kubectl rollout restart deployment/checkout-api -n shop" in runbook.text
    assert "<namespace>" not in runbook.text
    assert runbook.url == "https://wiki.test/5xx"
    assert runbook.placeholders == []

    bare = SHIPPED.for_alert({"alertname": "HighErrorRate"}, {}, cls)
    assert bare is not None
    assert "kubectl get pods -n <namespace>\n" in bare.text
    assert "deployment/<deployment>" in bare.text
    assert bare.placeholders == ["deployment", "namespace"]
    assert bare.url is None


def test_service_label_stands_in_for_deployment_and_unsafe_values_fill_nothing() -> None:
    labels = {"alertname": "HighLatency", "namespace": "shop; rm -rf /", "service": "search"}
    runbook = SHIPPED.for_alert(labels, {}, RULES.classify(labels, {}))
    assert runbook is not None
    assert "kubectl scale deployment/search --replicas=6 -n <namespace>" in runbook.text
    assert "rm -rf" not in runbook.text
    assert "namespace" in runbook.placeholders


def test_a_folder_adds_and_overrides_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "high-latency.md").write_text(
        "---\ntitle: Our latency runbook\nmatchers: ['alertname=~\"(?i).*latency.*\"']\n---\n"
        "Call the search team about <service>.\n"
    )
    (tmp_path / "disk.md").write_text(
        "---\ntitle: Disk full\norder: 5\nmatchers:\n  - 'alertname=~\"Disk.*\"'\n"
        "  - 'classification.severity=~\"SEV[34]\"'\n---\nClean /var/log on <instance>.\n"
    )
    runbooks = load_runbooks(tmp_path)
    assert sorted(r.name for r in runbooks.runbooks) == [
        "database-issues",
        "disk",
        "high-latency",
        "security-incident",
        "service-unavailable",
    ]
    labels = {"alertname": "HighLatency", "service": "search"}
    latency = runbooks.for_alert(labels, {}, RULES.classify(labels, {}))
    assert latency is not None
    assert latency.title == "Our latency runbook"
    assert latency.text == "Call the search team about search.\n"
    disk = {"alertname": "DiskAlmostFull", "severity": "warning", "instance": "db-1:9100"}
    found = runbooks.for_alert(disk, {}, RULES.classify(disk, {}))
    assert found is not None
    assert found.text == "Clean /var/log on db-1:9100.\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("title: x\n", 1, "starts with a '---'"),
        ("---\ntitle: x\nmatchers: ['a=\"b\"']\n", 1, "not closed"),
        ("---\ntitle: x\nmatchers:\n  - 'a=\"b\"'\n  - 'bad matcher'\n---\nbody\n", 5, "not a matcher"),
        ("---\ntitle: x\nmatchers: [a\n---\nbody\n", 4, "not valid YAML"),
        ("---\ntitle: x\nmatcher: ['a=\"b\"']\n---\nbody\n", 3, "unknown key"),
        ("---\ntitle: x\nmatchers: []\n---\nbody\n", 3, "non-empty list"),
        ("---\ntitle: x\nmatchers: ['classification.owner=\"x\"']\n---\nb\n", 3, "unknown name"),
        ("---\ntitle: x\nmatchers: ['a=\"b\"']\n---\n\n", 5, "no body"),
        ("---\ntitle: x\norder: " + "9" * 5_000 + "\nmatchers: ['a=\"b\"']\n---\nb\n", 3, "order is a"),
        ("---\ntitle: x\norder: \u00b2\nmatchers: ['a=\"b\"']\n---\nb\n", 3, "order is a"),
    ],
)
def test_a_bad_file_names_the_file_and_the_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    (tmp_path / "broken.md").write_text(text)
    with pytest.raises(RunbookError) as raised:
        load_runbooks(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'broken.md'} line {line}: "), message
    assert reason in message


def test_a_severity_rule_cannot_test_the_classification() -> None:
    from models.classification import RulesError, parse_rules

    with pytest.raises(RulesError, match="cannot test the classification"):
        parse_rules("rules:\n  - {name: a, severity: SEV1, matchers: ['classification.rule=\"x\"']}\n")


def test_parse_runbook_keeps_the_front_matter() -> None:
    runbook = parse_runbook("x", "---\ntitle: ' T '\norder: 7\nmatchers: ['a=\"b\"']\n---\n\nBody\n")
    assert (runbook.title, runbook.order, runbook.body) == ("T", 7, "Body\n")


async def test_the_worker_records_the_runbook_at_opening_and_a_replay_agrees(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), RULES, POLICY, runbooks=SHIPPED)
    record = alert(namespace="shop", annotations={"summary": "5xx", "runbook_url": "https://w/5xx"})
    events = await pipeline.process_alerts([record])
    opened = next(e for e in events if e.type is EventType.OPENED)
    runbook = opened.incident.runbook
    assert runbook is not None
    assert runbook.name == "service-unavailable"
    assert "kubectl get pods -n shop" in runbook.text
    assert runbook.url == "https://w/5xx"
    stored = await pipeline.store.get(opened.incident_id)
    assert stored is not None
    assert stored.runbook == runbook
    # Later events carry it too; a replay of the record changes nothing.
    more = await pipeline.process_alerts([alert(namespace="shop", instance="b")])
    assert more
    assert all(e.incident.runbook == runbook for e in more)
    assert await pipeline.process_alerts([record]) == []
