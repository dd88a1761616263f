"""A team's runbooks: tried before the shared ones for the team's incidents only, chosen when
the incident opens and kept by replays, and a bad team runbook stops the start naming the teams
file's line and the runbook's file and line."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from models.events import EventType
from models.runbooks import RunbookError
from models.settings import Settings
from models.teams import Teams, default_team, parse_teams
from sevflow.teams import teams_problem
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from streams.runbooks import load_runbooks, team_runbooks
from tests.builders import alert
from tests.unit.test_pipeline_store import POLICY

DEFAULT, _ = default_team(SecretStr("d" * 32), "incidents", {})
LATENCY = (
    "---\ntitle: Payments latency\nmatchers: ['alertname=~\"(?i).*latency.*\"']\n---\n"
    "Page the payments DBA about <service>.\n"
)


def _teams(tmp_path: Path, runbooks_dir: str = "payments-runbooks") -> Teams:
    text = (
        "teams:\n"
        "  - name: payments\n"
        "    matchers: ['team=\"payments\"']\n"
        f"    runbooks_dir: {runbooks_dir}\n"
        "  - name: search\n"
        "    matchers: ['team=\"search\"']\n"
    )
    (tmp_path / "teams.yaml").write_text(text)
    return parse_teams(text, DEFAULT, source=str(tmp_path / "teams.yaml"))


def test_the_teams_runbooks_come_first_for_its_incidents_only(tmp_path: Path) -> None:
    folder = tmp_path / "payments-runbooks"
    folder.mkdir()
    (folder / "latency.md").write_text(LATENCY)
    teams = _teams(tmp_path)  # runbooks_dir relative to the teams file
    chooser = team_runbooks(teams, load_runbooks(None))
    rules = load_rules(None)

    def chosen(**labels: str) -> str | None:
        record = alert("HighLatencyP95", **labels)
        found = chooser.for_record(record, rules.classify(record.labels, record.annotations))
        return found.title if found is not None else None

    assert chosen(team="payments", service="checkout") == "Payments latency"
    assert chosen(team="search", service="search") == "High Latency"
    assert chosen(service="api") == "High Latency"  # the default team: shared ones
    # What the team has no runbook for falls back to the shared runbooks.
    record = alert("PostgresDown", team="payments")
    found = chooser.for_record(record, rules.classify(record.labels, record.annotations))
    assert found is not None
    assert found.name == "database-issues"


def test_without_team_runbooks_the_shared_set_is_used_as_is(tmp_path: Path) -> None:
    shared = load_runbooks(None)
    assert team_runbooks(parse_teams("teams: []\n", DEFAULT), shared) is shared


def test_a_bad_team_runbook_names_the_teams_line_and_the_runbooks_file_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "payments-runbooks"
    folder.mkdir()
    (folder / "broken.md").write_text("---\ntitle: x\nmatcher: ['a=\"b\"']\n---\nbody\n")
    with pytest.raises(RunbookError) as raised:
        team_runbooks(_teams(tmp_path), load_runbooks(None))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'teams.yaml'}:2: team 'payments': runbooks: ")
    assert f"{folder / 'broken.md'} line 3: unknown key" in message


def test_a_missing_team_runbooks_dir_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RunbookError) as raised:
        team_runbooks(_teams(tmp_path, "/nonexistent/runbooks"), load_runbooks(None))
    assert "team 'payments': runbooks: /nonexistent/runbooks" in str(raised.value)


async def test_the_worker_records_the_teams_runbook_at_opening_and_a_replay_agrees(
    engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "payments-runbooks"
    folder.mkdir()
    (folder / "latency.md").write_text(LATENCY)
    teams = _teams(tmp_path)
    pipeline = Pipeline(
        IncidentStore(engine),
        load_rules(None),
        POLICY,
        runbooks=team_runbooks(teams, load_runbooks(None)),
        teams=teams,
    )
    record = alert("HighLatencyP95", team="payments", service="checkout")
    events = await pipeline.process_alerts([record])
    opened = next(e for e in events if e.type is EventType.OPENED)
    assert opened.incident.team == "payments"
    runbook = opened.incident.runbook
    assert runbook is not None
    assert runbook.text == "Page the payments DBA about checkout.\n"
    stored = await pipeline.store.get(opened.incident_id)
    assert stored is not None
    assert stored.runbook == runbook
    assert await pipeline.process_alerts([record]) == []


def test_the_start_check_names_a_bad_team_runbook(tmp_path: Path) -> None:
    folder = tmp_path / "payments-runbooks"
    folder.mkdir()
    (folder / "broken.md").write_text("---\ntitle: x\n---\nbody\n")
    _teams(tmp_path)
    problem = teams_problem(Settings(teams_file=tmp_path / "teams.yaml"))
    assert problem is not None
    assert problem.startswith(f"{tmp_path / 'teams.yaml'}:2: team 'payments': runbooks: ")
