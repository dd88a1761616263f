"""Every sink uses the incident's team (README "Teams"): its PagerDuty routing key, its
announcement channel, its status-page components; the default team's incident goes where every
incident went before. Against the contract-enforcing fakes, the delivery log on SQLite and
PostgreSQL (the ``engine`` fixture), fed records directly."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import IncidentEvent
from models.settings import Settings
from models.severity import Severity
from sevflow.teams import load_teams
from sinks.base import Sink
from sinks.fanout import build_sinks
from sinks.pagerduty import PagerDutySink
from sinks.slack import SlackSink
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import ROUTING_KEY, delivered, records, sink_settings, worker_for
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage

pytestmark = pytest.mark.integration

clock = fixtures.clock
fake_pagerduty = fixtures.fake_pagerduty
fake_slack = fixtures.fake_slack
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert

PAYMENTS_KEY = "PAYMENTSKEY0123456789abcdefABCDE"  # 32 characters

TEAMS = """\
teams:
  - name: payments
    matchers: ['team="payments"']
    routing_key: {env: PAYMENTS_PD_KEY}
    announce_channel: payments-incidents
    status_page_components: {checkout: cmpweb000001}
    private_channel_invite: [U0PAYSEC01, '<!subteam^S0PAYSEC>']
"""


def of_team(events: list[IncidentEvent], team: str) -> list[IncidentEvent]:
    """The events as the worker publishes them for an incident its team owns."""
    return [
        e.model_copy(update={"incident": e.incident.model_copy(update={"team": team})}) for e in events
    ]


def sinks_with_teams(
    settings: Settings, tmp_path: Path, engine: AsyncEngine, clock: FakeClock
) -> list[Sink]:
    """The sinks with the teams file; without PagerDuty, the teams have no routing key (one
    would stop the start: README "Teams")."""
    path = tmp_path / "teams.yaml"
    paging = settings.pagerduty_routing_key is not None
    path.write_text(TEAMS if paging else TEAMS.replace("    routing_key: {env: PAYMENTS_PD_KEY}\n", ""))
    settings = settings.model_copy(update={"teams_file": path})
    teams = load_teams(settings, {"PAYMENTS_PD_KEY": PAYMENTS_KEY})
    return build_sinks(settings, engine, clock, teams=teams)


def two_incidents() -> list[IncidentEvent]:
    payments = IncidentStory(name="PaymentsDown", service="checkout", summary="Payments failing")
    other = IncidentStory(name="ApiErrors", service="api", summary="API errors")
    return of_team(payments.fire(at=T0), "payments") + other.fire(at=T0)


async def test_each_sink_uses_the_incidents_team(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    fake_slack.add_channel("payments-incidents")
    settings = sink_settings(
        pagerduty=fake_pagerduty, slack=fake_slack, statuspage=fake_statuspage, cert=tls_cert
    )
    events = two_incidents()
    for sink in sinks_with_teams(settings, tmp_path, engine, clock):
        worker, dead = worker_for(sink, clock)
        try:
            await worker.process(records(events))
            assert dead.letters == []
        finally:
            await sink.close()
    # PagerDuty: the payments incident pages the payments service, the other the default key.
    assert {a.summary.split("]")[-1].strip(): a.routing_key for a in fake_pagerduty.alerts} == {
        "Payments failing": PAYMENTS_KEY,
        "API errors": ROUTING_KEY,
    }
    # Slack: each announced in its team's channel.
    (payments_post,) = fake_slack.posts("payments-incidents")
    (default_post,) = fake_slack.posts("incidents")
    assert "Payments failing" in payments_post["text"]
    assert "API errors" in default_post["text"]
    # Status page: each shows its team's components, through its team's allow-list (the
    # default team's allow-list does not name checkout).
    created = {w["name"]: w["component_ids"] for method, w in fake_statuspage.writes if method == "POST"}
    assert created == {
        "Partial outage affecting checkout": ["cmpweb000001"],
        "Partial outage affecting api": ["cmpapi000001"],
    }


async def test_an_escalation_level_without_its_own_service_pages_the_teams(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    (sink,) = [s for s in sinks_with_teams(settings, tmp_path, engine, clock) if s.name == "pagerduty"]
    story = IncidentStory()
    opened = story.fire()
    targets = json.dumps([{"kind": "pagerduty", "to": "primary-again"}])
    later = T0 + timedelta(minutes=15)
    escalated = story.escalate({"level": "2", "targets": targets, "again": "1"}, later, "page again")
    events = of_team([*opened, *escalated], "payments")
    try:
        assert await sink.handle(events) == []
    finally:
        await sink.close()
    assert {e["routing_key"] for e in fake_pagerduty.events} == {PAYMENTS_KEY}
    assert len(fake_pagerduty.events) == 2  # the incident's page and the level's


async def test_a_teams_sev4_incidents_are_listed_in_its_own_channels_morning_digest(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> None:
    fake_slack.add_channel("payments-incidents")
    settings = sink_settings(slack=fake_slack, slack_severities="SEV1-SEV3")
    (sink,) = [s for s in sinks_with_teams(settings, tmp_path, engine, clock) if s.name == "slack"]
    morning = datetime(2026, 1, 16, 9, 0, tzinfo=UTC)
    listing = {"level": "digest", "level_name": "digest", "targets": "[]", "digest_day": "2026-01-16"}
    payments = IncidentStory(name="PaySlow", severity=Severity.SEV4, summary="Slow refunds")
    other = IncidentStory(name="DiskAlmostFull", severity=Severity.SEV4, group="disk")
    events = [
        *of_team([*payments.fire(), *payments.escalate(dict(listing), morning, "SEV4")], "payments"),
        *other.fire(),
        *other.escalate(dict(listing), morning, "SEV4"),
    ]
    letters = await delivered(sink, clock, events)
    assert letters == []
    (team_digest,) = fake_slack.posts("payments-incidents")
    (default_digest,) = fake_slack.posts("incidents")
    assert "Slow refunds" in team_digest["text"]
    assert "DiskAlmostFull" not in team_digest["text"]
    assert "Slow refunds" not in default_digest["text"]


async def test_a_teams_security_channel_invites_the_teams_people(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> None:
    fake_slack.add_channel("payments-incidents")
    for user in ("U0PAYSEC01", "U0PAYSEC02", "U0PAYSEC03"):
        fake_slack.add_user(user, "T111")
    fake_slack.add_usergroup("S0PAYSEC", ["U0PAYSEC02", "U0PAYSEC03"])
    settings = sink_settings(slack=fake_slack)
    (sink,) = [s for s in sinks_with_teams(settings, tmp_path, engine, clock) if s.name == "slack"]
    payments = IncidentStory(name="CardSkimming", summary="Card skimming", security=True)
    other = IncidentStory(name="SshBruteForce", group="ssh", summary="SSH brute force", security=True)
    letters = await delivered(sink, clock, [*of_team(payments.fire(), "payments"), *other.fire()])
    assert letters == []
    members = {}
    for name in fake_slack.created():
        channel = fake_slack.by_name(name)
        assert channel is not None
        assert channel.is_private
        members["card" if "card" in name else "ssh"] = set(channel.members)
    # the team's people in its own incident's private channel only
    assert members == {"card": {"U0BOT", "U0PAYSEC01", "U0PAYSEC02", "U0PAYSEC03"}, "ssh": {"U0BOT"}}


async def test_a_storm_digest_lists_a_teams_incidents_in_its_own_channel(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> None:
    fake_slack.add_channel("payments-incidents")
    settings = sink_settings(slack=fake_slack)
    (sink,) = [s for s in sinks_with_teams(settings, tmp_path, engine, clock) if s.name == "slack"]
    assert isinstance(sink, SlackSink)
    stories = [
        IncidentStory(name=f"Pay{n}", group=f"pay{n}", severity=Severity.SEV3, summary=f"Pay {n}")
        for n in range(3)
    ]
    other = IncidentStory(name="Disk", group="disk", severity=Severity.SEV3, summary="Disk full")
    events = [e for s in stories for e in of_team(s.fire(), "payments")] + other.fire()
    try:
        assert await sink.digest("storm1", T0, events[:2]) == []
        assert await sink.digest("storm1", T0, events[2:]) == []  # joins: edited, not re-posted
    finally:
        await sink.close()
    (team_digest,) = fake_slack.posts("payments-incidents")
    (default_digest,) = fake_slack.posts("incidents")
    text = team_digest["text"]  # as edited
    assert all(f"Pay {n}" in text for n in range(3))
    assert "Disk full" not in text
    assert "Disk full" in default_digest["text"]
    assert "Pay 0" not in default_digest["text"]


async def test_a_teams_escalation_service_is_paged_for_its_incidents_only(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    shared_secondary = "SHAREDSECONDARY0123456789abcdefA"
    team_secondary = "PAYSECONDARY0123456789abcdefABCD"
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert).model_copy(
        update={"escalation_pagerduty_routing_keys": {"secondary": SecretStr(shared_secondary)}}
    )
    path = tmp_path / "teams.yaml"
    path.write_text(
        TEAMS + "    escalation:\n      routing_keys:\n        secondary: {env: PAY_SECONDARY}\n"
    )
    environ = {"PAYMENTS_PD_KEY": PAYMENTS_KEY, "PAY_SECONDARY": team_secondary}
    teams = load_teams(settings.model_copy(update={"teams_file": path}), environ)
    (sink,) = [s for s in build_sinks(settings, engine, clock, teams=teams) if s.name == "pagerduty"]
    targets = json.dumps([{"kind": "pagerduty", "to": "secondary"}])
    later = T0 + timedelta(minutes=15)
    events = []
    for team, name in (("payments", "PaymentsDown"), ("default", "ApiErrors")):
        story = IncidentStory(name=name, group=name)
        opened = story.fire()
        escalated = story.escalate({"level": "2", "targets": targets}, later, "secondary")
        events += of_team([*opened, *escalated, *story.ack(later + timedelta(minutes=1))], team)
    try:
        assert await sink.handle(events) == []
    finally:
        await sink.close()
    pages = [(e["routing_key"], e["event_action"]) for e in fake_pagerduty.events]
    # Each incident's page, its secondary's page, and the acknowledgement of both, per service.
    assert sorted(pages) == sorted(
        [
            (PAYMENTS_KEY, "trigger"),
            (PAYMENTS_KEY, "acknowledge"),
            (team_secondary, "trigger"),
            (team_secondary, "acknowledge"),
            (ROUTING_KEY, "trigger"),
            (ROUTING_KEY, "acknowledge"),
            (shared_secondary, "trigger"),
            (shared_secondary, "acknowledge"),
        ]
    )
    assert team_secondary not in repr(teams)


async def test_a_pagerduty_storm_digest_pages_each_teams_service(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    (sink,) = [s for s in sinks_with_teams(settings, tmp_path, engine, clock) if s.name == "pagerduty"]
    assert isinstance(sink, PagerDutySink)
    stories = [
        IncidentStory(name=f"Pay{n}", group=f"pay{n}", severity=Severity.SEV3, summary=f"Pay {n}")
        for n in range(3)
    ]
    other = IncidentStory(name="Disk", group="disk", severity=Severity.SEV3, summary="Disk full")
    opened = [e for s in stories for e in of_team(s.fire(), "payments")] + other.fire()
    try:
        assert await sink.digest("storm1", T0, opened[:2]) == []
        assert await sink.digest("storm1", T0, opened[2:]) == []  # joins: re-triggered
        assert {a.routing_key for a in fake_pagerduty.alerts} == {PAYMENTS_KEY, ROUTING_KEY}
        last = {e["routing_key"]: e["payload"]["summary"] for e in fake_pagerduty.events}
        assert "3 lower-severity incidents" in last[PAYMENTS_KEY]  # as re-triggered
        assert "1 lower-severity incidents" in last[ROUTING_KEY]
        # The team's digest alert resolves on the team's service once its incidents resolved.
        resolved = [e for s in stories for e in of_team(s.resolve(), "payments")]
        assert await sink.handle(resolved) == []
    finally:
        await sink.close()
    states = {a.routing_key: a.status for a in fake_pagerduty.alerts if "storm" in a.dedup_key}
    assert states == {PAYMENTS_KEY: "resolved", ROUTING_KEY: "triggered"}
