"""The deployment files, checked statically: Prometheus rules (by promtool, including rule unit
tests), Alertmanager's routing (by amtool), the Grafana dashboard, the Dockerfile's user, and the
Kubernetes manifests against sevflow's real settings."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from models.settings import Settings
from receiver.metrics import ReceiverMetrics
from streams.escalation import EscalationMetrics
from streams.metrics import WorkerMetrics
from testkit.alertmanager import amtool
from testkit.local import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"
ALERTMANAGER = REPO / "deploy" / "alertmanager.yml"
RULES = REPO / "deploy" / "prometheus" / "sevflow-rules.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "sevflow-dashboard.json"
KUBERNETES = REPO / "deploy" / "kubernetes"
#: The Secret's example, with placeholders: not applied with the manifests.
SECRET_EXAMPLE = KUBERNETES / "examples" / "secret.example.yaml"

#: Metrics the rules and the dashboard use that sevflow does not export yet: the worker and the
#: sinks must export them under these names (consumer lag, dead letters, sink health).
NOT_YET_EXPORTED = {
    "sevflow_dlq_size",
    "sevflow_sink_failures_total",
    "sevflow_sink_circuit_open",
    "sevflow_sink_stopped",
    "sevflow_canary_interval_seconds",
    "sevflow_canary_watch_started_timestamp_seconds",
    "sevflow_canary_last_delivered_timestamp_seconds",
}
#: Series Prometheus itself provides.
PROMETHEUS = {"up", "ALERTS"}


def exported_metrics() -> set[str]:
    """Every sample name sevflow's registries can expose (counters as ``_total``, histograms as
    ``_bucket``/``_sum``/``_count``)."""
    names: set[str] = set()
    registries: list[CollectorRegistry] = [
        ReceiverMetrics().registry,
        EscalationMetrics().registry,
        WorkerMetrics().registry,
    ]
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
            else:
                names.add(family.name)
    return names


_FUNCTIONS = {
    "sum", "rate", "increase", "deriv", "max", "min", "by", "and", "or", "absent", "vector",
    "histogram_quantile", "le", "job", "status", "group", "topic", "sink", "level", "severity",
    "service", "alertstate", "alertname", "rate_interval", "receiver_job", "partition",
    "time", "instance", "reason",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads (identifiers that are not functions, labels or
    keywords; label matchers and strings removed first)."""
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_matchers)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", without_ranges))
    return {w for w in words if w not in _FUNCTIONS and not w.startswith("__")}


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError("promtool not found: install Debian's prometheus (scripts/install-deps.sh)")
    return path


# --- Prometheus rules ---------------------------------------------------------------------------


def test_every_rule_is_complete_and_routable() -> None:
    rules = load_rules()
    assert rules
    for rule in rules:
        name = rule.get("alert")
        assert name, rule
        assert name.startswith("Sevflow"), rule
        assert rule["expr"].strip()
        assert re.fullmatch(r"\d+[smh]", str(rule["for"])), name
        assert rule["labels"]["severity"] in {"sev1", "sev2", "sev3", "sev4", "none"}, name
        assert rule["labels"]["service"] == "sevflow", name  # routable: matchers service="sevflow"
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["runbook_url"].startswith("https://"), name


def test_rules_cover_sevflows_health_and_the_dead_mans_switch() -> None:
    by_name = {r["alert"]: r for r in load_rules()}
    assert {
        "SevflowWatchdog",
        "SevflowReceiverErrors",
        "SevflowConsumerLagGrowing",
        "SevflowDeadLetterQueueNotEmpty",
        "SevflowSinkCircuitOpen",
        "SevflowWorkerDown",
        "SevflowSinksDown",
    } <= set(by_name)
    watchdog = by_name["SevflowWatchdog"]
    assert watchdog["expr"].strip() == "vector(1)"  # always firing: its absence is the alert
    assert 'status=~"5.."' in by_name["SevflowReceiverErrors"]["expr"]


def test_every_sevflow_job_has_a_down_alert() -> None:
    """A role that is down exports nothing, so only ``up`` and ``absent(up)`` notice it: the
    worker's lag alert cannot fire once the worker is dead. Each sevflow job Prometheus scrapes
    (prometheus.yml) has an alert for both, under that job's name."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = [c["job_name"] for c in config["scrape_configs"] if c["job_name"].startswith("sevflow")]
    assert set(jobs) == {"sevflow-receiver", "sevflow-worker", "sevflow-sinks"}
    exprs = [" ".join(r["expr"].split()) for r in load_rules()]
    for job in jobs:
        down = f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})'
        assert down in exprs, f"no alert fires when {job} is down or not scraped"


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{matchers}}}", "values": values}


def expected(rule: dict[str, Any], value: str = "", **labels: str) -> dict[str, Any]:
    """The alert ``rule`` fires with: its labels plus ``labels``, its annotations rendered for
    those labels and the query ``value`` (as its ``humanize`` filters print it)."""

    def render(text: str) -> str:
        text = re.sub(r"\{\{ \$value[^}]*\}\}", value, text)
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {
        "exp_labels": {**rule["labels"], **labels},
        "exp_annotations": {k: render(v) for k, v in rule["annotations"].items()},
    }


def test_rules_fire_when_they_should(tmp_path: Path) -> None:
    """promtool's rule unit tests: the alerts fire on the series that mean trouble, stay quiet
    before their ``for`` has passed, and render their annotations."""
    rules = {r["alert"]: r for r in load_rules()}
    webhook = {"job": "sevflow-receiver", "method": "POST", "path": "/webhooks/alertmanager"}
    lag = {"group": "sevflow", "topic": "sevflow-alerts"}
    refused = {"topic": "sevflow-alerts", "reason": "newer_schema"}
    cases = [
        ("15m", "SevflowWatchdog", [expected(rules["SevflowWatchdog"])]),
        ("15m", "SevflowReceiverErrors", [expected(rules["SevflowReceiverErrors"], "10%")]),
        (
            "15m",
            "SevflowDeadLetterQueueNotEmpty",
            [expected(rules["SevflowDeadLetterQueueNotEmpty"], "3", topic="incident-events-dlq")],
        ),
        ("3m", "SevflowSinkCircuitOpen", []),  # open, but not for 5 minutes yet
        ("10m", "SevflowSinkCircuitOpen", [expected(rules["SevflowSinkCircuitOpen"], sink="slack")]),
        ("1m", "SevflowSinkStopped", []),
        ("3m", "SevflowSinkStopped", [expected(rules["SevflowSinkStopped"], sink="slack")]),
        ("5m", "SevflowConsumerLagGrowing", []),
        (
            "25m",
            "SevflowConsumerLagGrowing",
            [expected(rules["SevflowConsumerLagGrowing"], "5k", **lag)],
        ),
        ("15m", "SevflowReceiverDown", []),
        ("5m", "SevflowWorkerDown", []),  # up until 6m
        (
            "15m",
            "SevflowWorkerDown",
            [expected(rules["SevflowWorkerDown"], job="sevflow-worker", instance="w1")],
        ),
        ("8m", "SevflowWorkerStuck", []),  # heartbeat stale from 7m: not for 2 minutes yet
        (
            "15m",
            "SevflowWorkerStuck",
            [expected(rules["SevflowWorkerStuck"], "10m 0s", job="sevflow-worker", instance="w2")],
        ),
        # no sinks target at all (never deployed, or discovery lost them): absent() fires
        ("15m", "SevflowSinksDown", [expected(rules["SevflowSinksDown"], job="sevflow-sinks")]),
        ("5m", "SevflowOutboxBacklog", []),  # stuck from 2m: not for 10 minutes yet
        ("15m", "SevflowOutboxBacklog", [expected(rules["SevflowOutboxBacklog"], "500")]),
        ("4m", "SevflowWorkerRecordsRefused", []),
        (
            "8m",
            "SevflowWorkerRecordsRefused",
            [expected(rules["SevflowWorkerRecordsRefused"], "1", **refused)],
        ),
    ]
    document = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("http_requests_total", "0+10x20", status="503", **webhook),
                    series("http_requests_total", "0+90x20", status="200", **webhook),
                    series("sevflow_dlq_size", "0 0 3x18", topic="incident-events-dlq"),
                    series("sevflow_sink_circuit_open", "0 1x19", sink="slack"),
                    series("sevflow_sink_circuit_open", "0x20", sink="pagerduty"),
                    series("sevflow_sink_stopped", "0 0 1x18", sink="slack"),
                    series("sevflow_sink_stopped", "0x20", sink="pagerduty"),
                    # two worker replicas, each measuring the whole group's lag: 5k, not 10k
                    series("sevflow_consumer_lag", "0+200x30", partition="0", instance="w1", **lag),
                    series("sevflow_consumer_lag", "0+200x30", partition="0", instance="w2", **lag),
                    series("up", "1x20", job="sevflow-receiver", instance="r1"),
                    # two workers measure the same outbox: 500, not 1000
                    series("sevflow_outbox_backlog", "0 0 500x18", instance="w1"),
                    series("sevflow_outbox_backlog", "0 0 500x18", instance="w3"),
                    series("sevflow_worker_records_refused_total", "0x5 1x15", **refused),
                    series("up", "1x5 0x15", job="sevflow-worker", instance="w1"),
                    # w2 answers scrapes, but its loop stopped at 5m: the heartbeat stays at 300 s
                    series(
                        "sevflow_worker_heartbeat_timestamp_seconds",
                        "0+60x5 300x15",
                        job="sevflow-worker",
                        instance="w2",
                    ),
                    series(
                        "sevflow_worker_heartbeat_timestamp_seconds",
                        "0+60x20",
                        job="sevflow-worker",
                        instance="w3",
                    ),
                ],
                "alert_rule_test": [
                    {"eval_time": at, "alertname": name, "exp_alerts": alerts}
                    for at, name, alerts in cases
                ],
            }
        ],
    }
    # the summaries, spelled out once, so a broken template cannot pass by rendering to itself
    assert cases[1][2][0]["exp_annotations"]["summary"] == "10% of the receiver's responses are 5xx."
    assert cases[8][2][0]["exp_annotations"]["summary"] == (
        "sevflow is 5k records behind on sevflow-alerts and falling further behind."
    )
    tests = tmp_path / "sevflow-rules.test.yml"
    tests.write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [promtool(), "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stale_canary_pages_and_a_disabled_one_stays_quiet(tmp_path: Path) -> None:
    """SevflowCanaryStale: no canary reached PagerDuty for three intervals (since the last one,
    or since the sinks started when none has yet), for 5 minutes. Without the canary the sinks
    export no interval, and the rule stays quiet."""
    rule = {r["alert"]: r for r in load_rules()}["SevflowCanaryStale"]
    assert rule["labels"]["service"] == "sevflow"  # straight to PagerDuty, not through sevflow

    def case(input_series: list[dict[str, str]], checks: list[tuple[str, list[Any]]]) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": at, "alertname": "SevflowCanaryStale", "exp_alerts": alerts}
                for at, alerts in checks
            ],
        }

    interval = series("sevflow_canary_interval_seconds", "300x40", instance="s1")
    started = series("sevflow_canary_watch_started_timestamp_seconds", "0x40", instance="s1")
    document = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            # canaries every 5 minutes: quiet throughout
            case(
                [
                    interval,
                    started,
                    series(
                        "sevflow_canary_last_delivered_timestamp_seconds",
                        "_ 60 60 60 60 60 360x5 660x5 960x5 1260x5 1560x5 1860x5 2160x5",
                        instance="s1",
                    ),
                ],
                [("20m", []), ("38m", [])],
            ),
            # one canary at 2 min, then none: stale after 3 x 300 s, paging 5 minutes later
            case(
                [
                    interval,
                    started,
                    series(
                        "sevflow_canary_last_delivered_timestamp_seconds", "_ _ 120x38", instance="s1"
                    ),
                ],
                [("20m", []), ("25m", [expected(rule, "23m 0s")])],
            ),
            # the sinks started and no canary ever arrived
            case([interval, started], [("14m", []), ("25m", [expected(rule, "25m 0s")])]),
            # the canary is off: nothing exported, nothing fires
            case([series("up", "1x40", job="sevflow-sinks", instance="s1")], [("39m", [])]),
        ],
    }
    tests = tmp_path / "canary.test.yml"
    tests.write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [promtool(), "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def lag_exprs() -> list[str]:
    """Every rule and dashboard expression that reads sevflow_consumer_lag, whitespace folded."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [r["expr"] for r in load_rules()]
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return [" ".join(e.split()) for e in exprs if "sevflow_consumer_lag" in e]


def test_lag_is_counted_once_per_partition_however_many_workers_report_it() -> None:
    """Each worker replica reports the lag of every partition of its group: a plain sum counts
    each partition once per replica (2 replicas, twice the lag). The rules and the dashboard
    take the max per partition (of the lag, or of its deriv) before summing."""
    exprs = lag_exprs()
    assert len(exprs) >= 2  # the lag alert and the dashboard's lag panel
    per_partition = r"max by \(group, topic, partition\) \((?:\w+\()?$"
    for expr in exprs:
        for match in re.finditer(r"sevflow_consumer_lag", expr):
            assert re.search(per_partition, expr[: match.start()]), expr


def test_the_dashboards_lag_panel_counts_each_partition_once(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in dashboard["panels"] if "lag" in p["title"].lower()]
    (target,) = panel["targets"]
    lag = {"group": "sevflow", "topic": "sevflow-alerts"}
    document = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("sevflow_consumer_lag", "7x5", partition=p, instance=w, **lag)
                    for p in ("0", "1")
                    for w in ("w1", "w2")
                ],
                "promql_expr_test": [
                    {
                        "expr": target["expr"],
                        "eval_time": "4m",
                        "exp_samples": [
                            {"labels": '{group="sevflow",topic="sevflow-alerts"}', "value": 14}
                        ],
                    }
                ],
            }
        ],
    }
    tests = tmp_path / "dashboard-lag.test.yml"
    tests.write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [promtool(), "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_and_dashboard_read_only_metrics_sevflow_exports_or_owes() -> None:
    exported = exported_metrics()
    assert {"http_requests_total", "http_request_duration_seconds_bucket"} <= exported
    assert "sevflow_escalations_total" in exported
    exprs = [r["expr"] for r in load_rules()]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    used = set().union(*(metric_names(e) for e in exprs))
    unknown = used - exported - NOT_YET_EXPORTED - PROMETHEUS
    assert not unknown, f"metrics neither exported nor listed as owed: {sorted(unknown)}"
    assert used >= NOT_YET_EXPORTED  # the list names only what is really needed


# --- Alertmanager -------------------------------------------------------------------------------


def routed_to(**labels: str) -> list[str]:
    """The receivers Alertmanager's routing tree sends an alert with ``labels`` to (amtool)."""
    matchers = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(
        [amtool(), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *matchers],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def test_alertmanager_accepts_its_configuration() -> None:
    result = subprocess.run(
        [amtool(), "check-config", str(ALERTMANAGER)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_watchdog_goes_to_the_dead_mans_switch_not_into_sevflow() -> None:
    """SevflowWatchdog always fires: routed to sevflow it would be an incident open forever. It
    goes, alone, to a receiver without integrations (to point at a heartbeat service); everyone
    else's alerts still reach sevflow's webhook."""
    by_name = {r["alert"]: r for r in load_rules()}
    watchdog = {"alertname": "SevflowWatchdog", **by_name["SevflowWatchdog"]["labels"]}
    assert routed_to(**watchdog) == ["deadmans-switch"]
    assert routed_to(alertname="HighCPU", severity="critical") == ["sevflow"]
    config = yaml.safe_load(ALERTMANAGER.read_text())
    (switch,) = [r for r in config["receivers"] if r["name"] == "deadmans-switch"]
    assert switch == {"name": "deadmans-switch"}  # no integration: the heartbeat is dropped


def test_sevflows_own_alerts_page_through_pagerduty_not_through_sevflow() -> None:
    """An alert that sevflow is down cannot be delivered by sevflow: every meta-alert goes from
    Alertmanager straight to PagerDuty (its own routing key, read from a file), and none reaches
    sevflow's webhook."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    for rule in load_rules():
        if rule["alert"] == "SevflowWatchdog":
            continue
        targets = routed_to(alertname=rule["alert"], **rule["labels"])
        assert targets == ["sevflow-pagerduty"], (rule["alert"], targets)
    (pagerduty,) = receivers["sevflow-pagerduty"]["pagerduty_configs"]
    assert pagerduty["routing_key_file"].startswith("/run/secrets/")
    assert pagerduty["send_resolved"] is True
    assert "webhook_configs" not in receivers["sevflow-pagerduty"]


# --- Grafana dashboard --------------------------------------------------------------------------


def test_dashboard_shows_sevflows_health() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("ingest", "error rate", "p95", "lag", "dead-letter", "sink failures", "escalations"):
        assert topic in titles, topic
    for panel in panels:
        assert panel["gridPos"]["x"] >= 0
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["expr"] and t["refId"] for t in panel["targets"])
            assert panel["datasource"]["uid"] == "${datasource}"  # importable into any Grafana
    assert dashboard["uid"] == "sevflow-health"


# --- Kubernetes ---------------------------------------------------------------------------------


def applied_files() -> list[Path]:
    """What ``kubectl apply -f deploy/kubernetes/`` applies, in its order: the directory's own
    .yaml, .yml and .json files (not subdirectories), sorted by name."""
    return sorted(p for p in KUBERNETES.iterdir() if p.suffix in {".yaml", ".yml", ".json"})


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> list[dict[str, Any]]:
    return [document for path in applied_files() for document in documents(path)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def containers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for kind in ("Deployment", "Job"):
        for name, workload in by_kind(kind).items():
            out += [(name, c) for c in workload["spec"]["template"]["spec"]["containers"]]
    return out


SETTINGS_VARIABLES = {f"SEVFLOW_{name.upper()}" for name in Settings.model_fields}


def test_one_deployment_per_role_and_a_service_for_the_receiver() -> None:
    deployments = by_kind("Deployment")
    assert set(deployments) == {"sevflow-receiver", "sevflow-worker", "sevflow-sinks"}
    commands = {n: c["args"] for n, c in containers()}
    assert commands["sevflow-receiver"] == ["receiver"]
    assert commands["sevflow-worker"] == ["worker"]
    assert commands["sevflow-sinks"] == ["sinks"]
    assert commands["sevflow-init-db"] == ["init-db"]
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
    service = by_kind("Service")["sevflow-receiver"]
    receiver = deployments["sevflow-receiver"]
    assert (
        service["spec"]["selector"].items() <= receiver["spec"]["template"]["metadata"]["labels"].items()
    )
    (container,) = receiver["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert all(d["metadata"].get("namespace", "sevflow") == "sevflow" for d in manifests())


def test_containers_have_probes_resources_and_pinned_images() -> None:
    for name, container in containers():
        image = container["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image} has no repository"
        assert tag not in {"", "latest"}, f"{name}: image {image} is not pinned"
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{name}: {kind}"
        ports = {p["name"] for p in container.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                check = container[probe]["httpGet"]
                assert check["port"] in ports, f"{name}: {probe} on an unknown port"
    by_name = dict(containers())
    receiver = by_name["sevflow-receiver"]
    assert receiver["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert receiver["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def container_ports(name: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in dict(containers())[name].get("ports", [])}


def configured(**overrides: str) -> Settings:
    """The settings the ConfigMap gives every role (plus ``overrides``)."""
    data = by_kind("ConfigMap")["sevflow-config"]["data"]
    return Settings.model_validate(
        {k.removeprefix("SEVFLOW_").lower(): v for k, v in {**data, **overrides}.items()}
    )


def test_sinks_probes_ask_the_metrics_server_that_always_runs() -> None:
    """The built-in status page runs only while Statuspage is not configured: probes on it put
    a pod with Statuspage configured in a restart loop. The sinks' /metrics is always served
    (unless its port is 0), on SEVFLOW_STATUS_PAGE_HOST."""
    settings = configured()
    with_statuspage = configured(SEVFLOW_STATUSPAGE_API_KEY="k", SEVFLOW_STATUSPAGE_PAGE_ID="p")
    assert with_statuspage.statuspage_configured()  # the case where the status page is off
    assert with_statuspage.sinks_metrics_port == settings.sinks_metrics_port != 0
    assert settings.status_page_host == "0.0.0.0"  # the kubelet probes the pod's IP
    sinks = dict(containers())["sevflow-sinks"]
    ports = container_ports("sevflow-sinks")
    assert ports["metrics"] == settings.sinks_metrics_port
    assert ports["status-page"] == settings.status_page_port
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        # /health: /metrics needs SEVFLOW_METRICS_TOKEN when it is set, the kubelet has none.
        assert sinks[probe]["httpGet"] == {"path": "/health", "port": "metrics"}, probe


def test_only_the_public_listeners_are_routed_from_outside() -> None:
    """The receiver's internal port stays behind a ClusterIP Service; the vendor callbacks and the
    status page have Services of their own, and the example Ingress routes only to those."""
    settings = configured()
    services = by_kind("Service")
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services.values())
    receiver_ports = container_ports("sevflow-receiver")
    assert receiver_ports == {"http": settings.http_port, "callbacks": settings.callbacks_port}
    assert settings.callbacks_host == "0.0.0.0"
    assert [p["targetPort"] for p in services["sevflow-receiver"]["spec"]["ports"]] == ["http"]
    assert [p["targetPort"] for p in services["sevflow-callbacks"]["spec"]["ports"]] == ["callbacks"]
    assert [p["targetPort"] for p in services["sevflow-status-page"]["spec"]["ports"]] == ["status-page"]
    (ingress,) = documents(KUBERNETES / "examples" / "ingress.example.yaml")
    routed = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routed == {"sevflow-callbacks", "sevflow-status-page"}


def test_every_role_declares_its_metrics_port_and_is_annotated_for_scraping() -> None:
    """Prometheus' pod discovery scrapes what prometheus.io/scrape, /port and /path name: without
    them the worker's lag and the sinks' DLQ and circuit metrics are never collected."""
    settings = configured()
    metrics_ports = {
        "sevflow-receiver": ("http", settings.http_port),
        "sevflow-worker": ("metrics", settings.worker_metrics_port),
        "sevflow-sinks": ("metrics", settings.sinks_metrics_port),
    }
    assert settings.http_host == "0.0.0.0"  # the worker's /metrics listens there too
    assert set(metrics_ports) == set(by_kind("Deployment"))
    for name, deployment in by_kind("Deployment").items():
        port_name, port = metrics_ports[name]
        assert port != 0, name
        assert container_ports(name)[port_name] == port, name
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(port), name
        assert annotations.get("prometheus.io/path") == "/metrics", name


def test_the_worker_has_no_probe_on_its_metrics_endpoint() -> None:
    """prometheus_client answers /metrics from its own thread whatever faust's event loop does,
    so a probe there would not notice a stuck worker (see worker.yaml)."""
    worker = dict(containers())["sevflow-worker"]
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(worker)


def test_environment_comes_from_the_configmap_and_secret_with_real_settings() -> None:
    configmap = by_kind("ConfigMap")["sevflow-config"]
    (secret,) = documents(SECRET_EXAMPLE)
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "sevflow-secrets"
    keys = set(configmap["data"]) | set(secret["stringData"])
    unknown = keys - SETTINGS_VARIABLES
    assert not unknown, f"not sevflow settings: {sorted(unknown)}"
    assert not set(configmap["data"]) & set(secret["stringData"])
    for value in secret["stringData"].values():
        assert "REPLACE_ME" in value  # placeholders only: no real secret is ever committed
    for secret_name in ("SEVFLOW_DATABASE_URL", "SEVFLOW_WEBHOOK_TOKENS", "SEVFLOW_API_TOKENS"):
        assert secret_name in secret["stringData"]
    configured(**secret["stringData"])  # values must be valid for the settings they set, the
    # Secret's too (its SEVFLOW_API_TOKENS example was a bare token every role refused at start)
    for name, container in containers():
        sources = container["envFrom"]
        assert {"configMapRef": {"name": "sevflow-config"}} in sources, name
        assert {"secretRef": {"name": "sevflow-secrets"}} in sources, name
        for variable in container.get("env", []):
            assert variable["name"] in SETTINGS_VARIABLES, name


def test_the_namespace_is_applied_before_what_lives_in_it() -> None:
    """kubectl applies a directory's files in name order: a namespaced object applied before its
    Namespace fails (namespaces "sevflow" not found) on the first install."""
    first, *rest = applied_files()
    assert [d["kind"] for d in documents(first)] == ["Namespace"], first.name
    assert documents(first)[0]["metadata"]["name"] == "sevflow"
    for path in rest:
        for document in documents(path):
            assert document["kind"] != "Namespace", path.name
            assert document["metadata"]["namespace"] == "sevflow", path.name


def test_pods_run_as_the_user_the_image_creates() -> None:
    """The image's user has a fixed UID and GID, the ones every pod runs as: a pod running as
    another UID than the owner of /var/lib/sevflow in the image cannot write there."""
    lines = DOCKERFILE.read_text().splitlines()
    dockerfile = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    (useradd,) = re.findall(r"useradd [^&\n]*", dockerfile)
    assert re.search(r"--uid 10001\b", useradd), useradd
    assert "--user-group" in useradd, useradd  # a group of the same number: 10001
    assert re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE) == ["10001:10001"]
    assert "chown 10001:10001 /var/lib/sevflow" in dockerfile
    workloads = {**by_kind("Deployment"), **by_kind("Job")}
    assert set(workloads) == {"sevflow-receiver", "sevflow-worker", "sevflow-sinks", "sevflow-init-db"}
    for name, workload in workloads.items():
        context = workload["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == 10001, name
        assert context["runAsGroup"] == 10001, name
        assert context.get("fsGroup", 10001) == 10001, name


def test_applying_the_manifests_leaves_the_real_secret_alone() -> None:
    """A Secret among the applied files would overwrite the real one with its placeholders on
    every ``kubectl apply -f deploy/kubernetes/``: the example is kept out of them."""
    assert not by_kind("Secret")
    assert SECRET_EXAMPLE.parent != KUBERNETES
    assert SECRET_EXAMPLE not in applied_files()


@pytest.mark.parametrize("path", [*applied_files(), SECRET_EXAMPLE], ids=lambda p: p.name)
def test_every_manifest_has_the_basic_shape(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        assert document["apiVersion"]
        assert document["kind"]
        assert document["metadata"]["name"].startswith("sevflow")
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "sevflow"


def test_kubernetes_topics_survive_the_loss_of_a_broker() -> None:
    """Three replicas, two needed for an acknowledgement (models/topics.py says why)."""
    data = by_kind("ConfigMap")["sevflow-config"]["data"]
    replicas = int(data["SEVFLOW_TOPIC_REPLICATION_FACTOR"])
    assert replicas >= 3
    assert int(data["SEVFLOW_TOPIC_MIN_INSYNC_REPLICAS"]) == replicas - 1


def test_kubernetes_keeps_incident_events_longer_for_analytics() -> None:
    """``sevflow report --from-topic`` replays incident-events: it keeps 30 days, the other topics
    the global retention, all with the global durability."""
    settings = configured()
    events = settings.topic_spec(settings.events_topic).resolved(broker_default_rf=3)
    alerts = settings.topic_spec(settings.alerts_topic).resolved(broker_default_rf=3)
    assert events.retention_ms == 30 * 86_400_000
    assert alerts.retention_ms == settings.topic_retention_ms == 7 * 86_400_000
    assert (events.replication_factor, events.min_insync_replicas) == (3, 2)


def test_the_canary_is_configured_like_the_other_pagerduty_keys() -> None:
    """The canary's routing key is a secret next to the PagerDuty routing key (an example key in
    the Secret), its interval in the ConfigMap; together they turn the canary on."""
    (secret,) = documents(SECRET_EXAMPLE)
    header = SECRET_EXAMPLE.read_text().split("apiVersion")[0]
    assert "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY" in header
    data = by_kind("ConfigMap")["sevflow-config"]["data"]
    assert "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY" not in data
    settings = configured(
        SEVFLOW_PAGERDUTY_ROUTING_KEY="a" * 32, SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY="b" * 32
    )
    assert settings.canary_enabled()
    assert settings.canary_interval_seconds == float(data["SEVFLOW_CANARY_INTERVAL_SECONDS"])
    assert "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY" not in secret["stringData"]  # optional, like PD's
