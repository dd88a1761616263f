"""The playbook's journeys (issue #16, "Done when") through the real pieces: Alertmanager (amtool and
its API) → ``sevflow run`` → the vendor fakes and a real SMTP server, and back through the signed
Slack callbacks.

- a ``HighErrorRate`` SEV2 gets the 5xx runbook pinned in its channel, its commands filled from the
  alert's namespace;
- a ``CustomerDataExfiltration`` alert emails security@ and legal@ once each, and its resolution
  replies in their thread;
- a SEV4 pages nobody and is listed in the digest when the next business day's morning comes;
- a SEV1's engineering manager is escalated to by the announcement's button.

Everything runs on the wall clock. The morning comes within the test because the business
calendar's time zone is one of the test's own whose midnight is a minute away
(:mod:`testkit.timezones`), not because a clock is shifted.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from testkit import harness
from testkit.fakes import fixtures
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.smtp import PASSWORD, USERNAME, FakeSmtp, Received
from testkit.fakes.statuspage import FakeStatuspage
from testkit.harness import Alertmanager, Sevflow, alertmanager_for, running, sevflow_at_fakes, wait_for
from testkit.playbook import buttons, playbook_policy_yaml, press_button
from testkit.timezones import tz_search_path, zone_with_midnight_at

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert
slack = harness.realtime_slack

SIGNING_SECRET = "slack-signing-secret-for-playbook-journeys"
SLACK_TEAM = "T0PLAYBOOK"
ONCALL_USER = "U0ONCALL1"
MANAGER_KEY = "MANAGERKEY0123456789abcdefABCDEF"
SECURITY = "security@optimal-build.com"
LEGAL = "legal@optimal-build.com"
SENDER = "sevflow@alerts.optimal-build.com"

#: ``stack(**settings)``: a ``with`` block holding the started (sevflow, Alertmanager) pair.
Stack = Callable[..., AbstractContextManager[tuple[Sevflow, Alertmanager]]]


@pytest.fixture
def smtp(tls_cert: tuple[Path, Path]) -> Iterator[FakeSmtp]:
    """A real SMTP server (aiosmtpd) requiring STARTTLS and AUTH, as a company relay does."""
    server = FakeSmtp(tls_cert, auth=True).start()
    yield server
    server.close()


@pytest.fixture
def stack(
    tmp_path: Path,
    kafka_bootstrap: str,
    fake_pagerduty: FakePagerDuty,
    slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> Stack:
    """``with stack(policy=…, env=…, **settings) as (sevflow, alertmanager)``: sevflow at the
    fakes, taking the signed Slack callbacks, with the playbook's policy file ``policy`` when
    given (and more environment ``env``), and one Alertmanager notifying it; both stopped when
    the block ends."""
    slack.add_user(ONCALL_USER, SLACK_TEAM)
    slack.add_channel("security-incidents")

    @contextmanager
    def start(
        policy: str | None = None, env: dict[str, str] | None = None, **settings: str
    ) -> Iterator[tuple[Sevflow, Alertmanager]]:
        if policy is not None:
            policy_file = tmp_path / "escalation.yaml"
            policy_file.write_text(policy)
            settings["escalation_policy_file"] = str(policy_file)
        sevflow = sevflow_at_fakes(
            tmp_path,
            kafka_bootstrap,
            fake_pagerduty,
            slack,
            fake_statuspage,
            tls_cert,
            slack_signing_secret=SIGNING_SECRET,
            slack_team_id=SLACK_TEAM,
            escalation_interval_seconds="0.5",
            **settings,
        )
        sevflow.extra_env.update(env or {})
        alertmanager = alertmanager_for(sevflow, tmp_path)
        with running(sevflow, alertmanager):
            yield sevflow, alertmanager

    return start


def fire(alertmanager: Alertmanager, labels: dict[str, str], **annotations: str) -> None:
    alertmanager.amtool(
        "alert",
        "add",
        *[f"{k}={v}" for k, v in labels.items()],
        *[f"--annotation={k}={v}" for k, v in annotations.items()],
    )


def end(alertmanager: Alertmanager, labels: dict[str, str]) -> None:
    """The alert ends now (to the microsecond: cut to whole seconds, the end could fall before
    the alert's start, and sevflow ignores such a resolution)."""
    ends = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    alertmanager.amtool("alert", "add", *[f"{k}={v}" for k, v in labels.items()], f"--end={ends}")


def incidents(sevflow: Sevflow) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{sevflow.url}/api/incidents",
        headers={"Authorization": f"Bearer {sevflow.api_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["incidents"]
    return listed


def incident_json(sevflow: Sevflow, incident_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{sevflow.url}/api/incidents/{incident_id}",
        headers={"Authorization": f"Bearer {sevflow.api_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def the_incident(sevflow: Sevflow) -> dict[str, Any]:
    """The one incident sevflow holds, once it holds one."""
    (incident,) = wait_for(lambda: incidents(sevflow), 60, f"the incident ({sevflow.log_path})")
    return incident


def body(email: Received) -> str:
    payload = email.message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def message_text(message: dict[str, Any]) -> str:
    """All a reader sees of a Slack message: its text and its blocks' texts."""
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text", "")))
        for element in block.get("elements", []):
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                parts.append(element["text"])
    return "\n".join(parts)


def test_a_high_error_rate_sev2_gets_the_5xx_runbook_pinned_with_its_namespace_filled(
    stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack
) -> None:
    labels = {
        "alertname": "HighErrorRate",
        "service": "checkout",
        "namespace": "shop-prod",
        "severity": "critical",
    }
    with stack() as (sevflow, alertmanager):
        fire(alertmanager, labels, summary="Checkout 5xx rate above 5%")
        incident = the_incident(sevflow)
        channel = wait_for(slack.created, 60, "the incident channel")[0]
        pinned = wait_for(lambda: slack.pinned(channel), 60, f"a pinned runbook ({sevflow.log_path})")
        document = incident_json(sevflow, incident["id"])

    assert incident["severity"] == "SEV2"
    assert document["incident"]["runbook"]["title"] == "Service Unavailable (5xx errors)"
    (runbook,) = pinned
    text = message_text(runbook)
    assert "Service Unavailable (5xx errors)" in text
    assert "kubectl get pods -n shop-prod" in text
    assert "kubectl set resources deployment/checkout -n shop-prod" in text
    assert "-n &lt;namespace&gt;" not in text
    assert "-n <namespace>" not in text
    # The SEV2 pages the primary, once.
    assert fake_pagerduty.actions(incident["id"]) == ["trigger"]


def test_a_customer_data_exfiltration_emails_security_and_legal_once_and_replies_on_resolution(
    stack: Stack, smtp: FakeSmtp, slack: FakeSlack, tls_cert: tuple[Path, Path]
) -> None:
    labels = {"alertname": "CustomerDataExfiltration", "service": "api", "severity": "critical"}
    title = "Customer records leaving through the export API"
    with stack(
        quiet_period_seconds="0",
        smtp_host="127.0.0.1",
        smtp_port=str(smtp.port),
        smtp_from=SENDER,
        smtp_ca_file=str(tls_cert[0]),
        smtp_username=USERNAME,
        smtp_password=PASSWORD,
    ) as (sevflow, alertmanager):
        fire(alertmanager, labels, summary=title)
        incident = the_incident(sevflow)

        def told(address: str) -> list[Received]:
            return [m for m in smtp.received if address in m.recipients]

        wait_for(
            lambda: told(SECURITY) and told(LEGAL),
            90,
            f"security and legal emailed ({sevflow.log_path})",
        )
        end(alertmanager, labels)

        def resolution_replies() -> list[Received]:
            return [m for m in smtp.received if "Resolved at " in body(m)]

        wait_for(
            lambda: incident_json(sevflow, incident["id"])["incident"]["state"] == "resolved",
            60,
            "the incident resolved",
        )
        # The email sink handles an incident's events in order: once the resolution's reply is
        # here, every email of the earlier events is too (a duplicate would be among them).
        wait_for(
            lambda: {r for m in resolution_replies() for r in m.recipients} >= {SECURITY, LEGAL},
            60,
            f"the resolution replies ({sevflow.log_path})",
        )
        received = list(smtp.received)
        notices = wait_for(
            lambda: [p for p in slack.posts("security-incidents") if p["text"].startswith(":mega:")],
            60,
            "the notice in #security-incidents",
        )

    assert all(m.tls for m in received)  # STARTTLS, the certificate verified against the CA file
    assert incident["security"] is True
    assert incident["data_breach"] is True
    # Nothing sent twice: every (Message-ID, recipient) once.
    sent = Counter((m["Message-ID"], r) for m in received for r in m.recipients)
    assert set(sent.values()) == {1}, sent
    # One thread: the opening starts it, every other email answers it.
    (opening,) = [m for m in received if m.message["In-Reply-To"] is None]
    root = opening["Message-ID"]
    assert opening["Subject"] == f"[SEV2] Data breach: {title} ({incident['id']})"
    for answer in (m for m in received if m is not opening):
        assert answer["Subject"] == f"Re: {opening['Subject']}"
        assert answer["In-Reply-To"] == answer["References"] == root
    # Told once each (security@ and legal@), then one reply each on the resolution.
    replies = [m for m in received if "Resolved at " in body(m)]
    told = [m for m in received if m not in replies]
    assert sorted(r for m in told for r in m.recipients) == [LEGAL, SECURITY]
    # Each is told why: the security incident, the data breach (not the primary's page they
    # were told along with).
    for email in told:
        (why,) = [line for line in body(email).splitlines() if line.startswith("Why you are told:")]
        assert "primary on-call" not in why, why
        if SECURITY in email.recipients:
            assert (
                f"security incident: security contact told in #security-incidents; emailed {SECURITY}"
                in why
            ), why
        if LEGAL in email.recipients:
            assert f"data-breach incident: data breach contact emailed {LEGAL}" in why, why
    (notice,) = notices
    assert "*Why you are told:* security incident" in notice["text"]
    assert sorted(r for m in replies for r in m.recipients) == [LEGAL, SECURITY]


def test_a_sev4_pages_nobody_and_is_in_the_next_business_mornings_digest(
    tmp_path: Path, stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack
) -> None:
    """Every day is a business day from 00:00 in a zone whose midnight is two minutes away: the
    SEV4 opens "today", and the next business day's morning is that midnight."""
    zones = tmp_path / "zoneinfo"
    midnight = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=2)
    zone = zone_with_midnight_at(zones, midnight)
    policy = playbook_policy_yaml(timezone=zone, days="mon-sun", start="00:00", end="23:59")
    labels = {"alertname": "TooltipMisaligned", "service": "web", "severity": "info"}
    with stack(policy=policy, env={"PYTHONTZPATH": tz_search_path(zones)}) as (sevflow, alertmanager):
        fire(alertmanager, labels, summary="Checkout tooltip misaligned")
        incident = the_incident(sevflow)
        opened_at = datetime.fromisoformat(incident["opened_at"])
        assert opened_at < midnight, "too slow: the SEV4 opened after the morning it should wait for"

        def digest() -> list[dict[str, Any]]:
            return [p for p in slack.posts("incidents") if ":sunrise:" in p["text"]]

        (posted,) = wait_for(digest, 180, f"the morning digest ({sevflow.log_path})")
        listed_at = datetime.now(UTC)
        timeline = incident_json(sevflow, incident["id"])["timeline"]

    assert incident["severity"] == "SEV4"
    assert listed_at >= midnight - timedelta(seconds=1), "listed before the morning came"
    assert f"({incident['id']})" in posted["text"]
    assert "Checkout tooltip misaligned" in posted["text"]
    with (zones / zone).open("rb") as tzif:
        morning = midnight.astimezone(ZoneInfo.from_file(tzif)).date()
    assert f"*FOR TODAY* ({morning.isoformat()})" in posted["text"]
    digested = [e for e in timeline if e["type"] == "escalated" and e["data"].get("level") == "digest"]
    (listing,) = digested
    assert datetime.fromisoformat(listing["data"]["digest_at"]) == midnight  # that morning
    # Nobody was paged, the digest included: PagerDuty never heard of it.
    assert fake_pagerduty.events == []


def test_a_sev1_managers_escalation_by_the_slack_button_pages_the_manager(
    stack: Stack, fake_pagerduty: FakePagerDuty, slack: FakeSlack
) -> None:
    """The playbook's policy with the engineering manager as a PagerDuty service (the shipped one
    names a phone): the announcement's *Escalate to manager*, pressed in Slack, pages them once."""
    manager = "{kind: pagerduty, to: manager, label: Engineering Manager}"
    labels = {"alertname": "CheckoutDown", "service": "api", "severity": "critical"}
    with stack(
        policy=playbook_policy_yaml(manager=manager),
        escalation_pagerduty_routing_keys=f"manager={MANAGER_KEY}",
    ) as (sevflow, alertmanager):
        fire(alertmanager, labels, summary="Checkout is down")
        incident = the_incident(sevflow)
        incident_id = incident["id"]
        wait_for(lambda: fake_pagerduty.actions(incident_id), 60, "the primary's page")
        announcement = wait_for(lambda: slack.posts("incidents"), 60, "the announcement")[0]
        button = buttons(announcement)["escalate_manager"]

        response = press_button(
            sevflow.callbacks_url,
            SIGNING_SECRET,
            team_id=SLACK_TEAM,
            user_id=ONCALL_USER,
            user_name="alice",
            block_id="incident-actions",
            button=button,
        )
        assert response.status_code == 200, response.text

        manager_key = f"{incident_id}/escalation/manager"
        wait_for(
            lambda: fake_pagerduty.actions(manager_key), 60, f"the manager's page ({sevflow.log_path})"
        )
        channel = slack.created()[0]
        wait_for(
            lambda: any(":mega: Engineering manager" in p["text"] for p in slack.posts(channel)),
            60,
            "the manager's escalation in the incident channel",
        )
        timeline = incident_json(sevflow, incident_id)["timeline"]

    assert incident["severity"] == "SEV1"
    (page,) = [e for e in fake_pagerduty.events if e["dedup_key"] == manager_key]
    assert page["routing_key"] == MANAGER_KEY
    assert page["event_action"] == "trigger"
    assert fake_pagerduty.actions(incident_id) == ["trigger"]  # the incident's own page, untouched
    escalated = [e for e in timeline if e["type"] == "escalated"]
    assert [e["data"].get("level") for e in escalated].count("manager") == 1, escalated
