"""The whole pipeline, real pieces only, vendors faked at their HTTP boundary:

Alertmanager (amtool) → receiver → Kafka → worker → incident-events → sinks → PagerDuty, Slack,
Statuspage (loopback fakes that enforce the APIs' contracts). Firing and resolving one SEV1 alert
gives exactly one PagerDuty trigger and one resolve with the same dedup_key, one Slack channel and
announcement and one resolution message, and a status-page incident opened and resolved.
"""

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import alertmanager_for, running, sevflow_at_fakes, wait_for
from testkit.local_http import local_get
from testkit.settle import wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

LABELS = {"alertname": "CheckoutDown", "service": "api", "severity": "critical"}


def test_alert_to_pagerduty_slack_and_status_page_once(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> None:
    sevflow = sevflow_at_fakes(
        tmp_path,
        kafka_bootstrap,
        fake_pagerduty,
        slack,
        fake_statuspage,
        tls_cert,
        quiet_period_seconds="0",
    )
    alertmanager = alertmanager_for(sevflow, tmp_path)
    labels = [f"{k}={v}" for k, v in LABELS.items()]
    with running(sevflow, alertmanager):
        alertmanager.amtool("alert", "add", *labels, "--annotation=summary=Checkout is down")

        wait_for(lambda: fake_pagerduty.actions(), 90, f"the page (log {sevflow.log_path})")
        (trigger,) = [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]
        incident_id = trigger["dedup_key"]
        assert incident_id.startswith("inc_")
        assert trigger["payload"]["severity"] == "critical"  # SEV1
        channel = wait_for(lambda: slack.created(), 60, "the incident channel")[0]
        today = datetime.now(UTC).strftime("%Y%m%d")
        assert channel == f"incident-{today}-checkout-down"
        announcement = wait_for(lambda: slack.posts("incidents"), 60, "the announcement")[0]
        assert announcement["text"].startswith(":rotating_light: *INCIDENT* - [SEV1] - Checkout is down")
        assert announcement["text"].endswith(f"Updates in #{channel}")
        page = wait_for(
            lambda: list(fake_statuspage.incidents.values()), 60, "the status page incident"
        )[0]
        assert page["status"] == "investigating"

        end = datetime.now(UTC) - timedelta(seconds=1)
        alertmanager.amtool("alert", "add", *labels, f"--end={end.strftime('%Y-%m-%dT%H:%M:%SZ')}")

        def resolved_everywhere() -> bool:
            return (
                fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
                and any(p["text"].startswith(":white_check_mark:") for p in slack.posts(channel))
                and page["status"] == "resolved"
            )

        wait_for(resolved_everywhere, 90, f"the resolution everywhere (log {sevflow.log_path})")
        # Every record handled by the worker and by each sink: anything sent twice has been now.
        wait_settled(sevflow.env())
        worker_metrics = wait_for(
            lambda: (
                (text := local_get(f"http://127.0.0.1:{sevflow.worker_metrics_port}/metrics").text)
                and "sevflow_consumer_lag{" in text
                and text
            ),
            30,
            "the worker's metrics with consumer lag",
        )
        receiver_metrics = local_get(f"{sevflow.url}/metrics").text
        sink_metrics = wait_for(
            lambda: (
                (text := local_get(f"http://127.0.0.1:{sevflow.sinks_metrics_port}/metrics").text)
                and "sevflow_dlq_size{" in text
                and text
            ),
            60,
            "the sinks' metrics with the dead-letter count",
        )

    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
    assert slack.created() == [channel]
    assert len(slack.posts("incidents")) == 1
    resolutions = [p for p in slack.posts(channel) if p["text"].startswith(":white_check_mark:")]
    assert len(resolutions) == 1
    assert "*INCIDENT RESOLVED*" in resolutions[0]["text"]
    assert len(fake_statuspage.incidents) == 1
    assert "sevflow_worker_alerts_processed_total 2.0" in worker_metrics
    # Each applied alert's delay from its receipt to its commit, both of them within the journey.
    assert "sevflow_worker_alert_delay_seconds_count 2.0" in worker_metrics
    assert 'sevflow_worker_alert_delay_seconds_bucket{le="300.0"} 2.0' in worker_metrics
    (delays,) = re.findall(r"^sevflow_worker_alert_delay_seconds_sum (\S+)$", worker_metrics, re.M)
    assert float(delays) > 0
    assert 'sevflow_incident_events_total{type="opened"} 1.0' in worker_metrics
    for sink in ("pagerduty", "slack", "statuspage"):
        assert f'sevflow_sink_circuit_open{{sink="{sink}"}} 0.0' in sink_metrics
        assert f'sevflow_sink_failures_total{{sink="{sink}"}} 0.0' in sink_metrics
        assert f'sevflow_sink_stopped{{sink="{sink}"}} 0.0' in sink_metrics
    assert re.search(r'^sevflow_dlq_size\{topic="e2e-dlq-\w+"\} 0\.0$', sink_metrics, re.M)
    # The escalation loop saw the incident through: its time to resolve is recorded by severity.
    assert re.search(
        r'^sevflow_time_to_resolve_seconds_count\{severity="SEV1"\} 1\.0$', worker_metrics, re.M
    )
    assert "sevflow_outbox_backlog" in worker_metrics
    # The heartbeat the "worker stuck" alert reads is set by the event loop: recent, not 0.
    (beat,) = re.findall(r"^sevflow_worker_heartbeat_timestamp_seconds (\S+)$", worker_metrics, re.M)
    assert abs(time.time() - float(beat)) < 120
    assert (
        'http_requests_total{method="POST",path="/webhooks/alertmanager",status="200"}'
        in receiver_metrics
    )
