"""Escalation by team (README "Teams"): an incident is armed with its team's policy (its own
policy file, or its overrides over the default policy) and its team's business hours; the
default team, and a team without either, keep the default policy exactly."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from models.escalation import advance, arm, playbook_policy
from models.incident import Incident
from models.settings import Settings
from models.severity import Severity
from models.teams import Teams, default_team, parse_teams
from sevflow.teams import teams_problem
from streams.escalation import PolicyError, load_policy, parse_policy, team_policies
from tests.builders import T0

DEFAULT, _ = default_team(SecretStr("d" * 32), "incidents", {})

TEAMS = """\
teams:
  - name: payments
    matchers: ['team="payments"']
    escalation: {policy_file: payments.yaml}
  - name: storage
    matchers: ['service="storage"']
    business_hours: {timezone: Europe/Berlin, days: mon-fri, start: "08:00", end: "16:00"}
    escalation:
      overrides:
        - severities: [SEV1]
          repeat: 2
  - name: search
    matchers: ['service="search"']
"""

PAYMENTS_POLICY = """\
levels:
  - {name: payments primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}
  - {name: payments secondary, after: 2m, targets: [{kind: pagerduty, to: payments-secondary}]}
acknowledge_targets: {SEV1: 5m}
"""


def incident(team: str, severity: Severity = Severity.SEV1) -> Incident:
    return Incident(
        id="inc_0123456789abcdef",
        group_key='{}:{alertname="Down"}',
        title="Down",
        slug="down",
        severity=severity,
        services=("api",),
        opened_at=T0,
        sequence=1,
        team=team,
    )


def teams_in(tmp_path: Path, text: str = TEAMS) -> Teams:
    (tmp_path / "payments.yaml").write_text(PAYMENTS_POLICY)
    path = tmp_path / "teams.yaml"
    path.write_text(text)
    return parse_teams(text, DEFAULT, source=str(path))


def test_the_default_team_and_a_team_without_a_policy_keep_the_default_policy(
    tmp_path: Path,
) -> None:
    default = playbook_policy()
    policy = team_policies(default, teams_in(tmp_path))
    for team in ("default", "search", "gone-from-the-file"):
        assert arm(incident(team), policy, T0) == arm(incident("default"), default, T0)
    assert set(policy.teams) == {"payments", "storage"}


def test_a_team_policy_file_replaces_the_levels_and_targets(tmp_path: Path) -> None:
    policy = team_policies(playbook_policy(), teams_in(tmp_path))
    state = arm(incident("payments"), policy, T0)
    assert [lv.name for lv in state.plan.levels] == ["payments primary", "payments secondary"]
    step = advance(state, incident("payments"), T0 + timedelta(minutes=2))
    assert [f.data["targets_text"] for f in step.firings if f.type.value == "escalated"] == [
        "primary",
        "payments-secondary",
    ]
    # the default team at the same moment: only its primary (the secondary is 15 minutes away)
    default = advance(
        arm(incident("default"), policy, T0), incident("default"), T0 + timedelta(minutes=2)
    )
    assert [f.data["level"] for f in default.firings] == ["1"]


def test_team_overrides_go_before_the_default_policy_and_its_business_hours_apply(
    tmp_path: Path,
) -> None:
    policy = team_policies(playbook_policy(), teams_in(tmp_path))
    storage = arm(incident("storage"), policy, T0)
    assert storage.snapshot.plans[Severity.SEV1].repeat == 2
    assert storage.snapshot.plans[Severity.SEV2].repeat == 0  # the override is SEV1's only
    # SEV4: the next business day's digest at the team's opening hour, in its time zone
    # (T0 is Friday 12:00 UTC: Monday 08:00 Berlin is 07:00 UTC; the default's Monday 09:00 UTC)
    sev4 = arm(incident("storage", Severity.SEV4), policy, T0)
    assert sev4.digest_due_at == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert sev4.acknowledge_due_at == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    default = arm(incident("default", Severity.SEV4), policy, T0)
    assert default.digest_due_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_load_policy_attaches_the_teams_and_keeps_emailing(tmp_path: Path) -> None:
    policy = load_policy(None, emailing=True, teams=teams_in(tmp_path))
    assert policy.teams["payments"].emailing
    assert policy.teams["storage"].emailing
    assert load_policy(None).teams == {}


def test_a_bad_team_policy_file_names_the_teams_file_line_and_problem(tmp_path: Path) -> None:
    teams = teams_in(tmp_path)
    (tmp_path / "payments.yaml").write_text("levels: []\n")
    with pytest.raises(
        PolicyError, match=r"teams\.yaml:2: team 'payments': escalation: .*payments\.yaml: levels"
    ):
        team_policies(playbook_policy(), teams)
    (tmp_path / "payments.yaml").unlink()
    with pytest.raises(PolicyError, match=r"teams\.yaml:2: team 'payments': .*payments\.yaml"):
        team_policies(playbook_policy(), teams)


def test_a_policy_file_cannot_set_teams() -> None:
    with pytest.raises(PolicyError, match="teams file"):
        parse_policy(PAYMENTS_POLICY + "teams: {}\n")


def test_a_bad_team_policy_file_is_a_start_problem(tmp_path: Path) -> None:
    teams_in(tmp_path)
    settings = Settings(teams_file=tmp_path / "teams.yaml")
    assert teams_problem(settings) is None
    (tmp_path / "payments.yaml").write_text("levels: [{name: x, after: soon, targets: []}]\n")
    problem = teams_problem(settings)
    assert problem is not None
    assert problem.startswith(f"{tmp_path / 'teams.yaml'}:2: team 'payments': escalation: ")
