"""The teams file: first match wins over labels, annotations and the Alertmanager receiver, an
unmatched alert is the default team's (today's settings), routing keys are read by reference and
never inline, and a bad file fails naming the file and the line."""

import argparse
import asyncio
import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.testclient import TestClient

from analytics.figures import ResponseTargets, SlaStatus, sla_status
from analytics.incident_times import IncidentTimes, rebuild_times
from models.alert import AlertRecord
from models.escalation import arm
from models.events import Actor, EventType, IncidentEvent, IncidentState
from models.incident import Command
from models.settings import Settings
from models.severity import Severity
from models.teams import DEFAULT_TEAM, Teams, TeamsError, default_team, parse_teams
from receiver.access import protect_all
from receiver.incident_api import incident_routes
from sevflow.commands import add_commands, run_command
from sevflow.teams import load_teams
from store.db import async_engine
from store.incidents import IncidentStore
from streams.escalation import load_policy
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.builders import T0, alert, api_credentials
from tests.unit.test_console import signed_in
from tests.unit.test_escalation_policy import incident as opened_incident
from tests.unit.test_pipeline_store import POLICY

TEAMS = """\
teams:
  - name: payments
    matchers: ['team="payments"']
    routing_key: {env: PAYMENTS_PD_KEY}
    announce_channel: payments-incidents
    status_page_components: {checkout: Checkout}
  - name: storage
    matchers: ['receiver="storage-pager"']
    routing_key: {file: KEYFILE}
    business_hours: {timezone: Europe/Berlin, days: mon-fri, start: "08:00", end: "16:00"}
    escalation:
      overrides:
        - severities: [SEV1]
          repeat: 2
  - name: search
    matchers: ['service=~"search|index"', 'annotations.owner!="payments"']
"""

KEY = "0123456789abcdef0123456789abcdef"
DEFAULT, DEFAULT_KEYS = default_team(SecretStr("d" * 32), "incidents", {"api": "API"})


def parsed(text: str = TEAMS) -> Teams:
    return parse_teams(text, DEFAULT, source="teams.yaml")


def test_first_match_wins_and_unmatched_goes_to_the_default_team() -> None:
    teams = parsed()
    assert teams.choose({"team": "payments", "service": "search"}, {}, "x").name == "payments"
    assert teams.choose({"service": "index"}, {}, None).name == "search"
    assert teams.choose({"service": "index"}, {"owner": "payments"}, None).name == DEFAULT_TEAM
    assert teams.choose({"alertname": "Disk"}, {}, "default-receiver").name == DEFAULT_TEAM


def test_the_receiver_matcher_reads_the_alertmanager_receiver_not_a_label() -> None:
    teams = parsed()
    assert teams.choose({}, {}, "storage-pager").name == "storage"
    assert teams.get("storage").uses_receiver
    assert not teams.get("payments").uses_receiver
    explained = teams.explain({"service": "web"}, {}, "storage-pager")
    assert explained.team.name == "storage"
    assert explained.tried == [("payments", 'team="payments"')]


def test_a_team_without_channel_key_or_components_uses_the_default_teams() -> None:
    teams = Teams(parsed().teams, DEFAULT, {**DEFAULT_KEYS, "payments": SecretStr(KEY)})
    assert teams.announce_channel("payments") == "payments-incidents"
    assert teams.announce_channel("search") == "incidents"
    assert teams.components("payments") == {"checkout": "Checkout"}
    assert teams.components("search") == {"api": "API"}
    assert teams.routing_key("payments") == SecretStr(KEY)
    assert teams.routing_key("search") == SecretStr("d" * 32)
    assert teams.routing_key("gone-from-the-file") == SecretStr("d" * 32)


def test_escalation_and_business_hours_are_parsed_and_kept_on_the_team() -> None:
    storage = parsed().get("storage")
    assert storage.business_hours is not None
    assert storage.business_hours.timezone == "Europe/Berlin"
    assert storage.escalation is not None
    assert storage.escalation.overrides[0].repeat == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            TEAMS.replace("routing_key: {env", "pagerduty_key: {env"),
            "teams.yaml:4: unknown field 'pagerduty_key'",
        ),
        (TEAMS.replace("'team=\"payments\"'", "'team=\"pay'"), "teams.yaml:3: matchers: bad matcher"),
        (TEAMS.replace("{env: PAYMENTS_PD_KEY}", KEY), "teams.yaml:4: routing_key:"),
        (
            TEAMS.replace("{file: KEYFILE}", "{env: A, file: B}"),
            "teams.yaml:9: routing_key: give exactly one",
        ),
        (TEAMS.replace('"16:00"', '"07:00"'), "teams.yaml:10: business_hours: business hours must end"),
        (TEAMS.replace("repeat: 2", "repeat: -1"), "teams.yaml:14: escalation.overrides.repeat"),
        (
            TEAMS.replace("name: search", "name: payments"),
            "teams.yaml:15: team 'payments' is named twice",
        ),
        (
            TEAMS.replace("name: search", "name: default"),
            "teams.yaml:15: team 'default' is the implicit",
        ),
        (TEAMS.replace("name: search", "name: Search Team"), "teams.yaml:15: team name 'Search Team'"),
        (TEAMS + "    matchers: []\n", "teams.yaml:17: duplicate key 'matchers'"),
        ("teams:\n  - name: x\n", "teams.yaml:2: team 'x' needs at least one matcher"),
        ("teams: [\n", "teams.yaml:2: not valid YAML"),
        ("- a\n", "teams.yaml:1: expected a mapping"),
    ],
)
def test_a_bad_teams_file_fails_naming_the_file_and_the_line(text: str, message: str) -> None:
    with pytest.raises(TeamsError) as raised:
        parsed(text)
    assert str(raised.value).startswith(message), str(raised.value)


def test_routing_keys_are_read_by_reference_at_start(tmp_path: Path) -> None:
    keyfile = tmp_path / "storage.key"
    keyfile.write_text(KEY.upper() + "\n")
    path = tmp_path / "teams.yaml"
    path.write_text(TEAMS.replace("KEYFILE", str(keyfile)))
    settings = Settings(teams_file=path, pagerduty_routing_key=SecretStr("d" * 32))
    teams = load_teams(settings, {"PAYMENTS_PD_KEY": KEY})
    assert teams.routing_key("payments") == SecretStr(KEY)
    assert teams.routing_key("storage") == SecretStr(KEY.upper())
    assert teams.routing_key(DEFAULT_TEAM) == SecretStr("d" * 32)
    assert [t.name for t in teams.all()] == ["payments", "storage", "search", DEFAULT_TEAM]
    assert KEY not in repr(teams)  # a log line or a traceback of the teams never shows a key
    assert KEY.upper() not in repr(teams)


def test_an_unresolved_routing_key_stops_the_start_naming_the_reference_not_a_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "teams.yaml"
    path.write_text(TEAMS.replace("KEYFILE", str(tmp_path / "missing.key")))
    settings = Settings(teams_file=path)
    with pytest.raises(
        TeamsError,
        match=r"teams.yaml:2: team 'payments': routing key: environment variable PAYMENTS_PD_KEY",
    ):
        load_teams(settings, {})
    with pytest.raises(
        TeamsError,
        match=r"teams.yaml:7: team 'storage': routing key: file .*missing.key: cannot be read",
    ):
        load_teams(settings, {"PAYMENTS_PD_KEY": KEY})
    (tmp_path / "missing.key").write_text("\n")
    with pytest.raises(TeamsError, match="is empty") as raised:
        load_teams(settings, {"PAYMENTS_PD_KEY": KEY})
    assert KEY not in str(raised.value)


def test_without_a_teams_file_there_is_one_team_with_todays_settings() -> None:
    settings = Settings(
        pagerduty_routing_key=SecretStr(KEY),
        slack_announce_channel="ops",
        statuspage_components={"api": "API"},
    )
    teams = load_teams(settings, {})
    assert [t.name for t in teams.all()] == [DEFAULT_TEAM]
    assert teams.choose({"team": "payments"}, {}, "anything").name == DEFAULT_TEAM
    assert teams.routing_key(DEFAULT_TEAM) == SecretStr(KEY)
    assert teams.announce_channel(DEFAULT_TEAM) == "ops"
    assert teams.components(DEFAULT_TEAM) == {"api": "API"}


# --- the team on the incident -----------------------------------------------------------------


def _receiver(record: AlertRecord, receiver: str) -> AlertRecord:
    return record.model_copy(update={"receiver": receiver})


async def test_the_team_is_decided_when_the_incident_opens_and_never_moves(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, teams=parsed())
    events = await pipeline.process_alerts([alert("PayDown", team="payments", instance="a")])
    opened = next(e for e in events if e.type is EventType.OPENED)
    assert opened.incident.team == "payments"
    # A later alert of another team, a label change, a second route's copy: the team stays.
    later = await pipeline.process_alerts(
        [
            alert("PayDown", team="search", instance="b"),
            _receiver(alert("PayDown", team="payments", instance="c"), "storage-pager"),
        ]
    )
    assert later
    assert {e.incident.team for e in later} == {"payments"}
    stored = await pipeline.store.get(opened.incident_id)
    assert stored is not None
    assert stored.team == "payments"
    # The receiver decides only where a team matches on it; else labels, then the default team.
    by_receiver = await pipeline.process_alerts([_receiver(alert("DiskFull"), "storage-pager")])
    assert by_receiver[0].incident.team == "storage"
    unmatched = await pipeline.process_alerts([alert("Other")])
    assert unmatched[0].incident.team == DEFAULT_TEAM
    assert await pipeline.store.list_incidents(team="storage") == [
        await pipeline.store.get(by_receiver[0].incident_id)
    ]


async def test_without_teams_every_incident_is_the_default_teams_and_events_are_unchanged(
    engine,
) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    (opened,) = await pipeline.process_alerts([alert("PayDown", team="payments")])
    assert opened.incident.team == DEFAULT_TEAM
    # The default team's events are what v1 wrote: no team field in the incident snapshot.
    assert "team" not in opened.incident.model_dump(mode="json")
    older = IncidentEvent.from_bytes(opened.to_bytes())
    assert older.incident.team == DEFAULT_TEAM


# --- the team in the listings, the API and the report ---------------------------------------


@pytest.fixture
def teams_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store with two payments incidents (one acknowledged), one storage incident (by
    Alertmanager receiver) and one of the default team."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)

    async def populate() -> None:
        engine = async_engine(url)
        try:
            pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, teams=parsed())
            events = await pipeline.process_alerts(
                [
                    alert("PayDown", team="payments"),
                    alert("PayLatency", team="payments", severity="warning"),
                    _receiver(alert("DiskFull"), "storage-pager"),
                    alert("Other"),
                ]
            )
            first = next(e for e in events if e.type is EventType.OPENED)
            acknowledgement = Command(
                command_id="ack-1",
                incident_id=first.incident_id,
                action="acknowledge",
                requested_at=T0 + timedelta(minutes=4),
                actor=Actor(via="cli", name="alice"),
            )
            await pipeline.process_command(acknowledgement)
        finally:
            await engine.dispose()

    asyncio.run(populate())
    return url


def _run(url: str, *argv: str) -> tuple[int | None, str]:
    root = argparse.ArgumentParser(prog="sevflow")
    add_commands(root.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    status = run_command(
        Settings(database_url=SecretStr(url)),
        root.parse_args(argv),
        out=out,
        err=err,
        now=lambda: T0 + timedelta(hours=1),
    )
    return status, out.getvalue() + err.getvalue()


def test_incidents_list_and_report_filter_by_team(teams_db: str) -> None:
    status, listed = _run(teams_db, "incidents", "list", "--team", "payments")
    assert status == 0
    assert "PayDown" in listed
    assert "PayLatency" in listed
    assert "DiskFull" not in listed
    assert "Other" not in listed
    _, storage = _run(teams_db, "incidents", "list", "--team", "storage")
    assert "DiskFull" in storage
    assert "PayDown" not in storage
    status, report = _run(teams_db, "report", "--team", "payments")
    assert status == 0
    assert "team payments only" in report
    total = next(line for line in report.splitlines() if line.startswith("ALL"))
    assert total.split()[1:4] == ["-", "2", "1"]  # 2 incidents, 1 acknowledged
    _, everything = _run(teams_db, "report")
    assert next(line for line in everything.splitlines() if line.startswith("ALL")).split()[2] == "4"


def test_the_incident_api_shows_and_filters_the_team(teams_db: str) -> None:
    engine = async_engine(teams_db)
    app = Starlette(routes=protect_all(incident_routes(engine), api_credentials("t")))
    with TestClient(app) as client:
        auth = {"authorization": "Bearer t"}
        found = client.get("/api/incidents", params={"team": "payments"}, headers=auth).json()
        assert sorted(i["title"] for i in found["incidents"]) == ["PayDown fired", "PayLatency fired"]
        assert {i["team"] for i in found["incidents"]} == {"payments"}
        every = client.get("/api/incidents", headers=auth).json()["incidents"]
        assert {i["team"] for i in every} == {"payments", "storage", DEFAULT_TEAM}
        client.portal.call(engine.dispose)


def test_incidents_show_names_the_team(teams_db: str) -> None:
    _, listed = _run(teams_db, "incidents", "list", "--team", "storage")
    incident_id = next(line.split()[0] for line in listed.splitlines() if line.startswith("inc_"))
    status, shown = _run(teams_db, "incidents", "show", incident_id)
    assert status == 0
    assert any(line.split() == ["Team:", "storage"] for line in shown.splitlines()), shown


def test_a_team_routing_key_without_the_default_one_stops_the_start(tmp_path: Path) -> None:
    """The PagerDuty sink runs with SEVFLOW_PAGERDUTY_ROUTING_KEY: a team's key without it
    would page nobody, silently."""
    path = tmp_path / "teams.yaml"
    path.write_text(TEAMS.replace("KEYFILE", str(tmp_path / "k")))
    (tmp_path / "k").write_text(KEY)
    with pytest.raises(TeamsError, match=r"teams.yaml:2: team 'payments' has a routing key but "):
        load_teams(Settings(teams_file=path), {"PAYMENTS_PD_KEY": KEY})


async def test_the_topic_alone_gives_each_incidents_team(engine) -> None:  # type: ignore[no-untyped-def]
    """``sevflow report --from-topic --team``: the events' snapshots carry the team, byte for
    byte through the topic's encoding."""
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), POLICY, teams=parsed())
    events = await pipeline.process_alerts(
        [alert("PayDown", team="payments"), _receiver(alert("Disk"), "storage-pager"), alert("X")]
    )
    decoded = [IncidentEvent.from_bytes(e.to_bytes()) for e in events]
    teams = sorted(t.team for t in rebuild_times(decoded).times)
    assert teams == [DEFAULT_TEAM, "payments", "storage"]


def test_the_console_shows_and_filters_the_team(teams_db: str) -> None:
    with signed_in(async_engine(teams_db), T0 + timedelta(hours=1)) as client:
        page = client.get("/ui/incidents?team=storage").text
        (storage_id,) = re.findall(r'data-incident="([^"]+)"', page)
        assert "team storage" in page
        assert 'name="team" placeholder="team" value="storage"' in page
        every = re.findall(r'data-incident="([^"]+)"', client.get("/ui/incidents").text)
        assert len(every) == 4
        shown = client.get(f"/ui/incidents/{storage_id}").text
        assert "<dt>Team</dt><dd>storage</dd>" in shown


def test_a_teams_sev4_is_judged_by_its_own_business_hours_as_the_engine_judges_it() -> None:
    """The report, the postmortem and the console judged every SEV4 by the default calendar;
    the escalation engine judges a team's by the team's: a SEV4 of storage (Berlin, 08:00-16:00)
    opened Thursday 22:30 UTC is due Friday 16:00 Berlin (15:00 UTC), not 17:00 UTC."""
    policy = load_policy(None, teams=parsed())
    opened = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)  # a Thursday
    answered = datetime(2026, 1, 16, 16, 0, tzinfo=UTC)  # Friday 17:00 in Berlin: late there
    times = IncidentTimes(
        incident_id="inc_storage",
        severity=Severity.SEV4,
        state=IncidentState.ACKNOWLEDGED,
        opened_at=opened,
        first_acknowledged_at=answered,
        team="storage",
    )
    targets = ResponseTargets.of_policy(policy)
    assert sla_status(times, targets, answered) == SlaStatus.BREACHED
    assert sla_status(replace(times, team="search"), targets, answered) == SlaStatus.MET
    assert sla_status(times, ResponseTargets(), answered) == SlaStatus.MET  # the default's calendar
    berlin_close = datetime(2026, 1, 16, 15, 0, tzinfo=UTC)
    assert targets.deadline(Severity.SEV4, opened, "storage") == berlin_close
    incident = opened_incident(Severity.SEV4).model_copy(update={"opened_at": opened, "team": "storage"})
    armed = arm(incident, policy.for_team("storage"), opened)
    assert armed.acknowledge_due_at == berlin_close  # the engine's own deadline
