"""``sevflow incidents list|show``, ``report`` and ``postmortem`` through the real argparse wiring
(their command groups added to a parser like sevflow's) against a real SQLite store."""

import argparse
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.settings import Settings
from sevflow.commands import add_commands, incidents, postmortem, report, run_command
from sevflow.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parse_time
from testkit.local import free_port
from tests.unit.test_analytics_scenario import NOW, Scenario, scenario_store


@dataclass
class Result:
    status: int | None
    out: str
    err: str


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)


@pytest.fixture
def scenario_db(tmp_path: Path, clean_env: None) -> tuple[str, Scenario]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return url, scenario_store(url)


#: The operator commands' groups: their commands only read the store (or the events topic).
OPERATOR = (incidents, report, postmortem)


def parser() -> argparse.ArgumentParser:
    """A parser shaped like sevflow's: sub-commands under ``command``."""
    root = argparse.ArgumentParser(prog="sevflow")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run")
    add_commands(sub, OPERATOR)
    return root


def run(url: str, *argv: str, **settings: object) -> Result:
    args = parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    status = run_command(
        Settings(database_url=url, **settings),  # type: ignore[arg-type]
        args,
        groups=OPERATOR,
        out=out,
        err=err,
        now=lambda: NOW,
    )
    return Result(status, out.getvalue(), err.getvalue())


def rows(table: str) -> list[list[str]]:
    """Data rows of a rendered table (after the dashed rule), split on 2+ spaces."""
    lines = table.strip().splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in lines[rule + 1 :] if line.strip()]


def test_other_commands_are_not_ours(clean_env: None) -> None:
    args = parser().parse_args(["run"])
    assert run_command(Settings(), args, groups=OPERATOR) is None


def test_list_shows_a_table_newest_first(scenario_db: tuple[str, Scenario]) -> None:
    url, scenario = scenario_db
    result = run(url, "incidents", "list")
    assert result.status == EXIT_OK
    header = result.out.splitlines()[0].split()
    assert header == ["ID", "SEV", "STATE", "OPENED", "SERVICES", "FIRING", "TITLE"]
    table = rows(result.out)
    assert [r[0] for r in table] == [
        scenario.ids[n]
        for n in ("QueueBacklog", "UIGlitch", "HighLatency", "CheckoutDown", "HighErrorRate")
    ]
    assert table[1][1:6] == ["SEV4", "triggered", "2026-11-27 15:00 UTC", "web", "1/1"]


def test_list_filters(scenario_db: tuple[str, Scenario]) -> None:
    url, scenario = scenario_db
    sev3 = run(url, "incidents", "list", "--sev", "SEV3", "--state", "resolved")
    assert [r[0] for r in rows(sev3.out)] == [scenario.ids["QueueBacklog"], scenario.ids["HighLatency"]]
    by_service = run(url, "incidents", "list", "--service", "checkout")
    assert [r[0] for r in rows(by_service.out)] == [scenario.ids["CheckoutDown"]]
    window = run(url, "incidents", "list", "--since", "2026-11-27T13:00Z", "--until", "2026-11-27 14:00")
    assert [r[0] for r in rows(window.out)] == [scenario.ids["CheckoutDown"]]
    recent = run(url, "incidents", "list", "--since", "26h")  # NOW - 26h = 2026-11-27 14:00
    assert len(rows(recent.out)) == 3
    none = run(url, "incidents", "list", "--service", "nope")
    assert (none.status, none.out) == (EXIT_OK, "no incidents match\n")
    limited = run(url, "incidents", "list", "--limit", "2")
    assert len(rows(limited.out)) == 2
    assert "first 2 shown" in limited.err


def test_invalid_options_exit_2_with_a_message(scenario_db: tuple[str, Scenario]) -> None:
    url, _ = scenario_db
    bad_time = run(url, "incidents", "list", "--since", "yesterday")
    assert bad_time.status == EXIT_USAGE
    assert "'yesterday' is neither a time" in bad_time.err
    backwards = run(url, "report", "--since", "1h", "--until", "2h")
    assert (backwards.status, backwards.err) == (
        EXIT_USAGE,
        "sevflow report: --since must be before --until\n",
    )
    assert run(url, "incidents", "list", "--limit", "0").status == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["incidents", "list", "--state", "sleeping"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "--sev4-target-hours", "-3"])


def test_show_prints_fields_timeline_and_alerts(scenario_db: tuple[str, Scenario]) -> None:
    url, scenario = scenario_db
    result = run(url, "incidents", "show", scenario.ids["HighErrorRate"])
    assert result.status == EXIT_OK
    assert "Severity:     SEV2 (Major functionality impaired)" in result.out
    assert "Acknowledged: 2026-11-27 12:10 UTC by alice" in result.out
    assert "Data breach:  no\n" in result.out
    timeline = rows(result.out.split("Timeline\n")[1].split("\n\n")[0])
    assert [r[2] for r in timeline] == ["opened", "acknowledged", "resolved"]
    assert timeline[1][3] == "Acknowledged by alice (slack)"
    alerts = rows(result.out.split("Alerts\n")[1])
    assert [r[:4] for r in alerts] == [["HighErrorRate", "firing", "SEV2", "api-1"]]


def test_unknown_incident_exits_1(scenario_db: tuple[str, Scenario]) -> None:
    url, _ = scenario_db
    show = run(url, "incidents", "show", "inc_0000000000000000")
    assert (show.status, show.out) == (EXIT_FAILURE, "")
    assert show.err == "sevflow incidents show: no incident inc_0000000000000000\n"
    assert run(url, "postmortem", "inc_0000000000000000").status == EXIT_FAILURE


def test_report_from_the_store(scenario_db: tuple[str, Scenario]) -> None:
    url, _ = scenario_db
    result = run(url, "report")
    assert result.status == EXIT_OK
    table = {r[0]: r for r in rows(result.out.split("\n\n")[0])}
    assert list(table) == ["SEV1", "SEV2", "SEV3", "SEV4", "ALL"]
    # SEV TARGET INCIDENTS ACKED MTTA p50 p90 RESOLVED MTTR p50 p90 MET BREACHED PENDING SLA
    assert table["SEV1"] == ["SEV1", "15m00s", "1", "1", "20m00s", "20m00s", "20m00s", "1",
                             "36m00s", "36m00s", "36m00s", "0", "1", "0", "0.0%"]  # fmt: skip
    assert table["SEV3"][7:11] == ["2", "23m00s", "23m00s", "28m36s"]
    # UIGlitch (SEV4) opened Friday 15:00: due Monday 17:00, still pending on Saturday.
    assert table["SEV4"][1] == "next business day"
    assert table["SEV4"][-4:] == ["0", "0", "1", "-"]
    assert table["ALL"][-4:] == ["3", "1", "1", "75.0%"]
    assert "business hours Mon-Fri 09:00-17:00 UTC" in result.out
    assert "Source: incident store" in result.out
    fixed = run(url, "report", "--sev4-target-hours", "24")
    assert "treated here as 24 hours (--sev4-target-hours)" in fixed.out
    fixed_table = {r[0]: r for r in rows(fixed.out.split("\n\n")[0])}
    assert fixed_table["SEV4"][1] == "1d00h"
    assert fixed_table["ALL"][-4:] == ["3", "2", "0", "60.0%"]
    windowed = run(url, "report", "--since", "2026-11-27T13:00Z", "--until", "2026-11-27T14:00Z")
    assert {r[0]: r[2] for r in rows(windowed.out.split("\n\n")[0])}["ALL"] == "1"


def test_report_from_an_unreachable_broker_exits_1(scenario_db: tuple[str, Scenario]) -> None:
    url, _ = scenario_db
    result = run(url, "report", "--from-topic", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    assert result.status == EXIT_FAILURE
    assert result.out == ""
    assert result.err.startswith("sevflow report: cannot reach Kafka at 127.0.0.1:")


def test_postmortem_to_stdout_and_to_a_file(scenario_db: tuple[str, Scenario], tmp_path: Path) -> None:
    url, scenario = scenario_db
    incident_id = scenario.ids["CheckoutDown"]
    printed = run(url, "postmortem", incident_id)
    assert printed.status == EXIT_OK
    assert printed.out.startswith("# Incident Postmortem: CheckoutDown fired\n")
    assert "- 13:20 - Acknowledged by bob (pagerduty)\n" in printed.out
    # Judged against the SEV1 target, as ``sevflow report`` judges it.
    assert "- Acknowledged: after 20 minutes by bob (SEV1 response target < 15 min: breached)\n" in (
        printed.out
    )
    assert "- Alerts: CheckoutDown (1 alert, first started 12:59)\n" in printed.out
    target = tmp_path / "pm.md"
    written = run(url, "postmortem", incident_id, "--output", str(target))
    assert written.status == EXIT_OK
    assert written.out == ""
    assert target.read_text() == printed.out
    assert f"written to {target}" in written.err
    unwritable = run(url, "postmortem", incident_id, "-o", str(tmp_path / "missing" / "pm.md"))
    assert unwritable.status == EXIT_FAILURE
    assert "cannot write" in unwritable.err


def test_store_without_tables_says_to_run_init_db(tmp_path: Path, clean_env: None) -> None:
    result = run(f"sqlite:///{tmp_path / 'empty.db'}", "incidents", "list")
    assert result.status == EXIT_FAILURE
    assert "no such table" in result.err
    assert "sevflow init-db" in result.err
    unsupported = run("mysql://u:secret@db/x", "report")
    assert unsupported.status == EXIT_FAILURE
    assert "unsupported database" in unsupported.err
    assert "secret" not in unsupported.err


def test_parse_time_accepts_iso_times_and_ages() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_time("2026-11-27", now) == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_time("2026-11-27T14:30:00+02:00", now) == datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    assert parse_time("90m", now) == now - timedelta(minutes=90)
    assert parse_time("2w", now) == now - timedelta(weeks=2)
    with pytest.raises(ValueError, match="neither"):
        parse_time("soon", now)


def test_out_of_range_times_and_ages_exit_2_with_a_message(scenario_db: tuple[str, Scenario]) -> None:
    """Ages beyond timedelta's range and times that leave datetime's range in UTC were an
    uncaught OverflowError (a traceback) instead of a usage error."""
    url, _ = scenario_db
    for argv in (
        ("report", "--since", "99999999d"),
        ("report", "--since", "1000000000d"),
        ("report", "--since", "0001-01-01T00:00+01:00"),
        ("incidents", "list", "--until", "99999999w"),
    ):
        result = run(url, *argv)
        assert result.status == EXIT_USAGE, argv
        command = "report" if argv[0] == "report" else "incidents list"
        assert (
            result.err == f"sevflow {command}: {argv[-1]!r} is out of range (times and ages "
            "must stay within the years 1-9999 UTC)\n"
        )
        assert result.out == ""
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of range"):
        parse_time("9999-12-31T23:00-05:00", now)


def test_report_judges_sev4_by_the_escalation_policy_calendar(
    scenario_db: tuple[str, Scenario], tmp_path: Path
) -> None:
    """SEV4 was judged by a fixed 24 hours whatever the escalation policy's business hours; the
    report now uses the calendar of the configured policy, as the escalation engine does."""
    url, _ = scenario_db
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "levels: [{name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}]\n"
        'business_hours: {timezone: UTC, days: [sat], start: "09:00", end: "10:00"}\n'
    )
    # UIGlitch opened Friday 15:00; the next business day (Saturday) closed at 10:00, before NOW.
    result = run(url, "report", escalation_policy_file=policy)
    assert result.status == EXIT_OK, result.err
    table = {r[0]: r for r in rows(result.out.split("\n\n")[0])}
    assert table["SEV4"][-4:] == ["0", "1", "0", "0.0%"]
    assert "business hours Sat 09:00-10:00 UTC" in result.out
    broken = tmp_path / "broken.yaml"
    broken.write_text("levels: []\nbusiness_hours: {days: [someday]}\n")
    failed = run(url, "report", escalation_policy_file=broken)
    assert failed.status == EXIT_FAILURE
    assert failed.err.startswith(f"sevflow report: escalation policy {broken}:")
    assert failed.out == ""
    # --sev4-target-hours replaces SEV4's target alone: the others are still the policy's, so a
    # broken policy is refused with it too (it judged SEV1-SEV3 by the playbook's instead).
    fixed = run(url, "report", "--sev4-target-hours", "24", escalation_policy_file=broken)
    assert fixed.status == EXIT_FAILURE
    assert fixed.err.startswith(f"sevflow report: escalation policy {broken}:")
