"""On-call journeys through the real pieces: Alertmanager (amtool) → ``sevflow run`` → the vendor
fakes, and back through the signed Slack and PagerDuty callbacks and the operator commands.

Each journey is what an on-call team lives through, checked where each role shows it: the page,
the Slack announcement and channel, the status page, the incident store and the CLI.
"""

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr

from receiver.callbacks import PAGERDUTY_PATH, SLACK_PATH, pagerduty_signature, slack_signature
from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import Alertmanager, Sevflow, alertmanager_for, running, sevflow_at_fakes, wait_for
from testkit.local import REPO
from testkit.settle import wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

SIGNING_SECRET = "slack-signing-secret-for-tests"
PD_WEBHOOK_SECRET = "pagerduty-webhook-secret-for-tests"
SLACK_TEAM = "T0JOURNEY"
PD_ACCOUNT = "journeys"
SECONDARY_KEY = "S3C0NDARYKEY0123456789abcdefABCD"
LABELS = {"alertname": "CheckoutDown", "service": "api", "severity": "critical"}


#: ``stack(**settings)``: a ``with`` block holding the started (sevflow, Alertmanager) pair.
Stack = Callable[..., AbstractContextManager[tuple[Sevflow, Alertmanager]]]


@pytest.fixture
def journey_sevflow(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> Callable[..., Sevflow]:
    """``journey_sevflow(**settings)``: sevflow at the fakes (not started), taking the signed
    Slack and PagerDuty callbacks and escalating every half second, so that a journey can answer
    its pages and escalate within a test's time."""

    slack.add_user("U0ONCALL1", SLACK_TEAM)

    def build(**settings: str) -> Sevflow:
        return sevflow_at_fakes(
            tmp_path,
            kafka_bootstrap,
            fake_pagerduty,
            slack,
            fake_statuspage,
            tls_cert,
            pagerduty_webhook_secrets=PD_WEBHOOK_SECRET,
            pagerduty_account_subdomain=PD_ACCOUNT,
            slack_signing_secret=SIGNING_SECRET,
            slack_team_id=SLACK_TEAM,
            escalation_interval_seconds="0.5",
            **settings,
        )

    return build


@pytest.fixture
def stack(tmp_path: Path, journey_sevflow: Callable[..., Sevflow]) -> Stack:
    """``with stack(**settings) as (sevflow, alertmanager)``: the journey's sevflow and one
    Alertmanager notifying it, both started, both stopped when the block ends. The settings
    (``quiet_period_seconds``, an escalation policy) are what tells the journeys apart."""

    @contextmanager
    def start(**settings: str) -> Iterator[tuple[Sevflow, Alertmanager]]:
        sevflow = journey_sevflow(**settings)
        alertmanager = alertmanager_for(sevflow, tmp_path)
        with running(sevflow, alertmanager):
            yield sevflow, alertmanager

    return start


def press_slack_button(sevflow: Sevflow, action: str, incident_id: str, user: str) -> None:
    """What Slack posts when ``user`` presses a button of the announcement, signed."""
    payload = {
        "type": "block_actions",
        "team": {"id": SLACK_TEAM},
        "user": {"id": "U0ONCALL1", "username": user, "name": user, "team_id": SLACK_TEAM},
        "actions": [
            {
                "action_id": action,
                "block_id": "incident-actions",
                "value": incident_id,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    response = httpx.post(
        sevflow.callbacks_url + SLACK_PATH,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(SecretStr(SIGNING_SECRET), timestamp, body),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def pagerduty_webhook(sevflow: Sevflow, event_type: str, incident_key: str, agent: str) -> None:
    """A PagerDuty webhook v3 delivery, signed."""
    document = {
        "event": {
            "id": uuid.uuid4().hex,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": datetime.now(UTC).isoformat(),
            "agent": {"id": "PAGENT1", "type": "user_reference", "summary": agent},
            "data": {
                "id": "PINC1",
                "type": "incident",
                "html_url": f"https://{PD_ACCOUNT}.pagerduty.com/incidents/PINC1",
                "incident_key": incident_key,
            },
        }
    }
    body = json.dumps(document).encode()
    response = httpx.post(
        sevflow.callbacks_url + PAGERDUTY_PATH,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": pagerduty_signature(SecretStr(PD_WEBHOOK_SECRET), body),
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted", response.text


def cli(sevflow: Sevflow, *argv: str) -> subprocess.CompletedProcess[str]:
    """``sevflow …`` in a process of its own, configured like the running instance."""
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *argv],
        cwd=REPO,
        env=sevflow.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def incident_json(sevflow: Sevflow, incident_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{sevflow.url}/api/incidents/{incident_id}",
        headers={"Authorization": f"Bearer {sevflow.api_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()["incident"]
    return document


def end_alert(alertmanager: Alertmanager, labels: dict[str, str]) -> None:
    """The alert ends now. The end keeps its fraction of a second: cut to whole seconds it may
    fall before the alert's ``startsAt``, and sevflow rightly ignores a resolution that ended
    before its alert started (a late copy of an earlier episode)."""
    end = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    alertmanager.amtool("alert", "add", *[f"{k}={v}" for k, v in labels.items()], f"--end={end}")


def fire_alert(alertmanager: Alertmanager, labels: dict[str, str], summary: str) -> None:
    alertmanager.amtool(
        "alert", "add", *[f"{k}={v}" for k, v in labels.items()], f"--annotation=summary={summary}"
    )


def page_checkout_down(sevflow: Sevflow, alertmanager: Alertmanager, pagerduty: FakePagerDuty) -> str:
    """Fire the checkout alert through Alertmanager and wait for its page; the incident's id."""
    fire_alert(alertmanager, LABELS, "Checkout is down")
    wait_for(lambda: pagerduty.actions(), 60, f"the page (log {sevflow.log_path})")
    return str(pagerduty.events[0]["dedup_key"])


def test_sev1_acknowledged_in_slack_then_resolved_everywhere(
    stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack, fake_statuspage: FakeStatuspage
) -> None:
    with stack(quiet_period_seconds="3") as (sevflow, alertmanager):
        incident_id = page_checkout_down(sevflow, alertmanager, fake_pagerduty)
        announcement = wait_for(lambda: slack.posts("incidents"), 60, "the announcement")[0]
        assert "*Status:* Investigating" in announcement["text"]
        channel = slack.created()[0]
        page = wait_for(lambda: list(fake_statuspage.incidents.values()), 60, "the status page")[0]
        assert page["status"] == "investigating"

        press_slack_button(sevflow, "ack", incident_id, "alice")

        def acknowledged_everywhere() -> bool:
            return (
                fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge"]
                and page["status"] == "identified"
                and "*Status:* Investigating" not in slack.posts("incidents")[0]["text"]
            )

        wait_for(acknowledged_everywhere, 60, f"the acknowledgement everywhere ({sevflow.log_path})")
        edited = slack.posts("incidents")[0]["text"]
        assert "*Lead:* @alice" in edited
        assert incident_json(sevflow, incident_id)["state"] == "acknowledged"

        end_alert(alertmanager, LABELS)

        def resolved_everywhere() -> bool:
            return (
                fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge", "resolve"]
                and page["status"] == "resolved"
                and incident_json(sevflow, incident_id)["state"] == "resolved"
            )

        wait_for(resolved_everywhere, 60, f"the resolution everywhere ({sevflow.log_path})")
        document = incident_json(sevflow, incident_id)
        postmortem = cli(sevflow, "postmortem", incident_id)
        report = cli(sevflow, "report")

    resolutions = [p for p in slack.posts(channel) if p["text"].startswith(":white_check_mark:")]
    assert len(resolutions) == 1
    final = slack.posts("incidents")[0]
    assert "*Status:* Resolved" in final["text"]
    assert all(block["type"] != "actions" for block in final["blocks"])  # no buttons left
    assert postmortem.returncode == 0, postmortem.stderr
    text = postmortem.stdout
    assert text.startswith("# Incident Postmortem: Checkout is down\n")
    assert "**Severity:** SEV1" in text
    assert "**Lead:** alice" in text
    timeline = text.split("## Timeline (UTC)\n")[1].split("\n\n")[0].splitlines()
    words = [line.split(" - ", 1)[1] for line in timeline]
    assert words[0] == "Alert fired: CheckoutDown"
    assert "Acknowledged by alice (slack)" in words
    assert "Alert resolved: CheckoutDown" in words
    assert words[-1].startswith("Resolved")
    # The report agrees with the incident's own times (the table shows whole seconds).
    assert report.returncode == 0, report.stderr
    opened = datetime.fromisoformat(document["opened_at"])
    tta = datetime.fromisoformat(document["acknowledged_at"]) - opened
    ttr = datetime.fromisoformat(document["resolved_at"]) - opened
    row = next(line.split() for line in report.stdout.splitlines() if line.startswith("SEV1 "))
    columns = "SEV TARGET INCIDENTS ACKED MTTA p50 p90 RESOLVED MTTR r50 r90 MET BREACHED PENDING SLA"
    sev1 = dict(zip(columns.split(), row, strict=True))
    assert (sev1["INCIDENTS"], sev1["ACKED"], sev1["RESOLVED"], sev1["MET"]) == ("1", "1", "1", "1")
    assert sev1["MTTA"] == f"{int(tta.total_seconds())}s"
    assert sev1["MTTR"] == f"{int(ttr.total_seconds())}s"
    assert sev1["SLA"] == "100.0%"


ESCALATION_POLICY = """\
levels:
  - name: primary on-call
    after: 0s
    targets: [{kind: pagerduty, to: primary, label: Primary On-Call}]
  - name: secondary on-call
    after: 3s
    targets: [{kind: pagerduty, to: secondary, label: Secondary On-Call}]
  - name: engineering manager
    after: 6s
    targets: [{kind: phone, to: engineering-manager, label: Engineering Manager}]
    severities: [SEV1]
repeat: 1
repeat_interval: 4s
acknowledge_targets: {SEV1: 5s}
"""


def test_unacknowledged_sev1_escalates_until_acknowledged_in_pagerduty(
    tmp_path: Path, stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack
) -> None:
    """The playbook's path on a compressed clock: primary at once, secondary, then the manager
    (SEV1); the secondary acknowledging their page in PagerDuty stops the rest (the repeat)."""
    policy = tmp_path / "escalation.yaml"
    policy.write_text(ESCALATION_POLICY)
    with stack(
        escalation_policy_file=str(policy),
        escalation_pagerduty_routing_keys=f"secondary={SECONDARY_KEY}",
    ) as (sevflow, alertmanager):
        incident_id = page_checkout_down(sevflow, alertmanager, fake_pagerduty)
        secondary_key = f"{incident_id}/escalation/secondary"

        def escalations() -> list[dict[str, Any]]:
            response = httpx.get(
                f"{sevflow.url}/api/incidents/{incident_id}",
                headers={"Authorization": f"Bearer {sevflow.api_token}"},
                timeout=10,
            )
            return [e for e in response.json()["timeline"] if e["type"] == "escalated"]

        wait_for(lambda: fake_pagerduty.actions(secondary_key), 30, "the secondary's page")
        (secondary_page,) = [e for e in fake_pagerduty.events if e["dedup_key"] == secondary_key]
        assert secondary_page["routing_key"] == SECONDARY_KEY
        wait_for(
            lambda: any(e["data"].get("level") == "3" for e in escalations()),
            30,
            "the engineering manager's escalation",
        )
        channel = slack.created()[0]
        wait_for(
            lambda: any("Engineering Manager" in p["text"] for p in slack.posts(channel)),
            30,
            "the manager's escalation in the incident channel",
        )

        pagerduty_webhook(sevflow, "incident.acknowledged", secondary_key, "Bob Secondary")
        wait_for(
            lambda: incident_json(sevflow, incident_id)["state"] == "acknowledged",
            30,
            "the acknowledgement from PagerDuty",
        )
        acknowledged = incident_json(sevflow, incident_id)
        escalated = escalations()
        # The repeat of the path was due 10 s after the opening (the last level at 6 s + 4 s):
        # wait until well past it, then nothing more may have escalated.
        opened = datetime.fromisoformat(acknowledged["opened_at"])
        repeat_due = opened + timedelta(seconds=10)
        wait_for(lambda: datetime.now(UTC) > repeat_due + timedelta(seconds=3), 30, "the repeat")
        later = escalations()
        escalations_cli = cli(sevflow, "escalations", incident_id)
        wait_for(
            lambda: fake_pagerduty.actions(incident_id)[-1:] == ["acknowledge"],
            30,
            "the incident's page acknowledged",
        )

    assert acknowledged["acknowledged_by"] == {"via": "pagerduty", "name": "Bob Secondary"}
    assert [e["data"].get("level") for e in escalated] == ["1", "2", "3"]
    assert later == escalated, "escalation went on after the acknowledgement"
    assert fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge"]
    assert escalations_cli.returncode == 0, escalations_cli.stderr


def test_a_flap_reopens_the_incident_pages_again_and_reopens_the_status_page(
    stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack, fake_statuspage: FakeStatuspage
) -> None:
    with stack(quiet_period_seconds="0") as (sevflow, alertmanager):
        incident_id = page_checkout_down(sevflow, alertmanager, fake_pagerduty)
        page = wait_for(lambda: list(fake_statuspage.incidents.values()), 60, "the status page")[0]
        end_alert(alertmanager, LABELS)
        wait_for(
            lambda: (
                fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
                and page["status"] == "resolved"
            ),
            60,
            "the resolution",
        )
        fire_alert(alertmanager, LABELS, "Checkout is down")
        wait_for(
            lambda: incident_json(sevflow, incident_id)["flaps"] == 1,
            60,
            f"the incident reopened ({sevflow.log_path})",
        )
        wait_for(
            lambda: fake_pagerduty.actions(incident_id) == ["trigger", "resolve", "trigger"],
            60,
            "the page of the reopened incident",
        )
        wait_for(
            lambda: any(p["status"] == "investigating" for p in fake_statuspage.incidents.values()),
            60,
            "the status page investigating again",
        )
        channel = slack.created()[0]
        wait_for(
            lambda: any("Reopened" in p["text"] for p in slack.posts(channel)),
            60,
            "the reopening in the incident channel",
        )
        reopened = incident_json(sevflow, incident_id)
        incidents = cli(sevflow, "incidents", "list")

    assert reopened["state"] == "triggered"
    assert reopened["resolved_at"] is None
    assert incidents.stdout.count("inc_") == 1, incidents.stdout
    assert slack.created() == [channel]
    # The same status-page incident is back to investigating; the announcement says so too.
    assert [p["status"] for p in fake_statuspage.incidents.values()] == ["investigating"]
    assert "*Status:* Investigating" in slack.posts("incidents")[0]["text"]


def test_a_maintenance_window_holds_matching_alerts_until_it_ends(
    stack: Stack, fake_pagerduty: FakePagerDuty
) -> None:
    """``sevflow maintenance add`` for the checkout service: its alerts page nobody while the
    window lasts, another service's do; at the window's end what still fires is paged, what
    resolved meanwhile never is."""
    held = {"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}
    gone = {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
    other = {"alertname": "SearchDown", "service": "search", "severity": "critical"}
    with stack(quiet_period_seconds="0") as (sevflow, alertmanager):
        window_end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
        added = cli(
            sevflow,
            "maintenance",
            "add",
            "-m",
            'service="checkout"',
            "--end",
            f"{window_end:%Y-%m-%dT%H:%M:%SZ}",
        )
        assert added.returncode == 0, added.stderr
        fire_alert(alertmanager, held, "Checkout is down")
        fire_alert(alertmanager, gone, "Checkout errors")
        fire_alert(alertmanager, other, "Search is down")

        def paged_summaries() -> list[str]:
            return [
                e["payload"]["summary"] for e in fake_pagerduty.events if e["event_action"] == "trigger"
            ]

        wait_for(lambda: paged_summaries(), 60, f"the search page (log {sevflow.log_path})")
        end_alert(alertmanager, gone)
        during = cli(sevflow, "incidents", "list")
        assert datetime.now(UTC) < window_end, "the test was too slow to look inside the window"
        paged_during = paged_summaries()
        wait_for(lambda: len(paged_summaries()) >= 2, 60, "the held alert paged at the window's end")
        assert datetime.now(UTC) >= window_end - timedelta(seconds=1)
        # Every record handled by the worker and each sink: anything else has shown up now.
        wait_settled(sevflow.env())
        after = cli(sevflow, "incidents", "list")
        listed = cli(sevflow, "maintenance", "list")

    assert [s for s in paged_during if "Search" in s] == paged_during, paged_during
    assert "Checkout" not in during.stdout, during.stdout
    summaries = paged_summaries()
    assert len(summaries) == 2, summaries
    assert any("Checkout is down" in s for s in summaries), summaries
    assert "Checkout errors" not in after.stdout, after.stdout
    assert "Checkout is down" in after.stdout, after.stdout
    assert listed.returncode == 0, listed.stderr


def test_two_alertmanagers_of_an_ha_pair_make_one_incident_and_one_page(
    tmp_path: Path,
    journey_sevflow: Callable[..., Sevflow],
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
) -> None:
    """Both Alertmanagers of an HA pair notify (each of them is told the alert, as Prometheus
    tells every Alertmanager): one incident, one page, one channel, one resolution."""
    sevflow = journey_sevflow(quiet_period_seconds="0")
    pair = [alertmanager_for(sevflow, tmp_path / "am1"), alertmanager_for(sevflow, tmp_path / "am2")]
    with running(sevflow, *pair):
        starts = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        alert = {"labels": LABELS, "annotations": {"summary": "Checkout is down"}, "startsAt": starts}
        for alertmanager in pair:
            alertmanager.post_alerts([alert])
        wait_for(
            lambda: all(am.metric("alertmanager_notifications_total") >= 1 for am in pair),
            60,
            "both Alertmanagers notifying",
        )
        wait_for(lambda: fake_pagerduty.actions(), 60, f"the page (log {sevflow.log_path})")
        incident_id = fake_pagerduty.events[0]["dedup_key"]
        ends = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        for alertmanager in pair:
            alertmanager.post_alerts([{**alert, "endsAt": ends}])
        wait_for(
            lambda: fake_pagerduty.actions(incident_id) == ["trigger", "resolve"],
            60,
            "the resolution",
        )
        # Both notifications handled by the worker and each sink: a second incident or page
        # would have shown up now.
        wait_settled(sevflow.env())
        listed = cli(sevflow, "incidents", "list")

    assert fake_pagerduty.actions() == ["trigger", "resolve"]
    assert listed.stdout.count("inc_") == 1, listed.stdout
    assert len(slack.created()) == 1
    assert len(slack.posts("incidents")) == 1
    assert len(fake_statuspage.incidents) == 1
