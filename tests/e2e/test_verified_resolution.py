"""Verified resolution through the whole pipeline: Alertmanager (amtool) → receiver → Kafka →
worker → incident-events → sinks, with the service's health probe configured.

A resolved alert whose health probe still fails does not resolve the incident: the incident
channel says why, the status page shows "monitoring", PagerDuty keeps its alert open. Once the
probe passes (the service answers 2xx), the incident resolves everywhere after the quiet period.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import alertmanager_for, running, sevflow_at_fakes, wait_for
from testkit.service import Service

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

LABELS = {"alertname": "CheckoutDown", "service": "api", "severity": "critical"}


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service(healthy=False).start()
    yield running
    running.close()


def test_a_failing_health_probe_keeps_the_incident_open_until_it_passes(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    service: Service,
) -> None:
    health = f"{service.url}/health"
    sevflow = sevflow_at_fakes(
        tmp_path,
        kafka_bootstrap,
        fake_pagerduty,
        slack,
        fake_statuspage,
        tls_cert,
        quiet_period_seconds="2",
        verify_probes=f'[{{"service": "api", "http_url": "{health}"}}]',
        verify_interval_seconds="0.5",
        verify_timeout_seconds="2",
    )
    alertmanager = alertmanager_for(sevflow, tmp_path)
    labels = [f"{k}={v}" for k, v in LABELS.items()]
    log = f"(log {sevflow.log_path})"
    with running(sevflow, alertmanager):
        alertmanager.amtool("alert", "add", *labels, "--annotation=summary=Checkout is down")
        wait_for(lambda: fake_pagerduty.actions(), 90, f"the page {log}")
        (trigger,) = [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]
        incident_id = trigger["dedup_key"]
        channel = wait_for(lambda: slack.created(), 60, "the incident channel")[0]
        page = wait_for(lambda: list(fake_statuspage.incidents.values()), 60, "the status page")[0]
        assert page["status"] == "investigating"

        end = datetime.now(UTC) - timedelta(seconds=1)
        alertmanager.amtool("alert", "add", *labels, f"--end={end.strftime('%Y-%m-%dT%H:%M:%SZ')}")

        def verification_failed() -> list[str]:
            return [p["text"] for p in slack.posts(channel) if "Verification failed" in p["text"]]

        (said,) = wait_for(verification_failed, 90, f"the verification failure in the channel {log}")
        assert said.endswith(
            f"Verification failed: GET {health} answered 503; the incident stays open and is "
            "watched for another 2s"
        )
        wait_for(lambda: page["status"] == "monitoring", 60, f"the status page monitoring {log}")
        # Many quiet periods later (each failing run starts it again), nothing resolved.
        checks = service.health_checks
        wait_for(lambda: service.health_checks >= checks + 20, 60, "ten more seconds of probes")
        assert fake_pagerduty.actions(incident_id) == ["trigger"]
        assert not any(p["text"].startswith(":white_check_mark:") for p in slack.posts(channel))
        assert page["status"] == "monitoring"
        assert len(verification_failed()) == 1  # said once, not at every failing run

        service.healthy = True

        def resolved_everywhere() -> bool:
            return (
                fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
                and any(p["text"].startswith(":white_check_mark:") for p in slack.posts(channel))
                and page["status"] == "resolved"
            )

        wait_for(resolved_everywhere, 90, f"the resolution everywhere {log}")

    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
    assert any("Verification passed" in p["text"] for p in slack.posts(channel))
