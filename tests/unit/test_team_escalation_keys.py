"""A team's escalation services: the PagerDuty routing keys of its escalation levels' targets,
given by reference (environment variable or file) in the teams file, read once at start, never
inline, and never shown: not in the teams' repr, not by ``sevflow teams show``."""

import argparse
import io
from pathlib import Path

import pytest
from pydantic import SecretStr

from models.settings import Settings
from models.teams import TeamsError
from sevflow.commands.teams import run as run_teams
from sevflow.teams import load_teams

KEY = "SECONDARYKEY0123456789abcdefABCD"
MANAGER = "MANAGERKEY0123456789abcdefABCDEF"

TEAMS = """\
teams:
  - name: payments
    matchers: ['team="payments"']
    escalation:
      routing_keys:
        secondary: {env: PAY_SECONDARY_KEY}
        engineering-manager: {file: MANAGERFILE}
  - name: search
    matchers: ['team="search"']
"""


def _settings(tmp_path: Path, text: str = TEAMS) -> Settings:
    path = tmp_path / "teams.yaml"
    path.write_text(text.replace("MANAGERFILE", str(tmp_path / "manager.key")))
    return Settings(teams_file=path, pagerduty_routing_key=SecretStr("d" * 32))


def test_a_teams_escalation_keys_are_read_by_reference_at_start(tmp_path: Path) -> None:
    (tmp_path / "manager.key").write_text(MANAGER + "\n")
    teams = load_teams(_settings(tmp_path), {"PAY_SECONDARY_KEY": KEY})
    assert teams.escalation_keys == {
        "payments": {"secondary": SecretStr(KEY), "engineering-manager": SecretStr(MANAGER)}
    }
    assert KEY not in repr(teams)
    assert MANAGER not in repr(teams)


def test_an_unresolved_escalation_key_stops_the_start_naming_the_reference(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(TeamsError) as raised:
        load_teams(settings, {})
    assert str(raised.value) == (
        f"{settings.teams_file}:2: team 'payments': escalation routing key 'secondary': "
        "environment variable PAY_SECONDARY_KEY is not set"
    )
    with pytest.raises(TeamsError, match=r"'engineering-manager': file .*manager\.key: cannot be read"):
        load_teams(settings, {"PAY_SECONDARY_KEY": KEY})


def test_an_inline_escalation_key_is_refused_naming_the_line(tmp_path: Path) -> None:
    inline = TEAMS.replace("{env: PAY_SECONDARY_KEY}", f"'{KEY}'")
    with pytest.raises(TeamsError) as raised:
        load_teams(_settings(tmp_path, inline), {})
    assert str(raised.value).startswith(f"{tmp_path / 'teams.yaml'}:6: ")
    assert KEY not in str(raised.value)


def test_an_escalation_key_without_the_default_routing_key_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "manager.key").write_text(MANAGER)
    settings = _settings(tmp_path).model_copy(update={"pagerduty_routing_key": None})
    with pytest.raises(TeamsError, match="team 'payments' has a routing key but"):
        load_teams(settings, {"PAY_SECONDARY_KEY": KEY})


def test_teams_show_names_the_references_never_the_keys(tmp_path: Path) -> None:
    (tmp_path / "manager.key").write_text(MANAGER)
    out = io.StringIO()
    args = argparse.Namespace(teams_command="show", name="payments")
    environ = {"PAY_SECONDARY_KEY": KEY}
    assert run_teams(_settings(tmp_path), args, out=out, environ=environ) == 0
    text = out.getvalue()
    assert "secondary: from env PAY_SECONDARY_KEY (set)" in text
    assert f"engineering-manager: from file {tmp_path / 'manager.key'} (present)" in text
    assert KEY not in text
    assert MANAGER not in text
