"""``sevflow teams list|show|match``: the teams as the roles read them, the choice explained, a
bad file named with its line, and never a routing key printed."""

from pathlib import Path

import pytest

from sevflow.cli import main
from tests.unit.test_teams import KEY, TEAMS


@pytest.fixture
def teams_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "teams.yaml"
    keyfile = tmp_path / "storage.key"
    keyfile.write_text(KEY)
    path.write_text(TEAMS.replace("KEYFILE", str(keyfile)))
    monkeypatch.setenv("SEVFLOW_TEAMS_FILE", str(path))
    monkeypatch.setenv("SEVFLOW_PAGERDUTY_ROUTING_KEY", "d" * 32)
    monkeypatch.setenv("PAYMENTS_PD_KEY", KEY)
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["teams", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_the_teams_in_the_order_tried(
    teams_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = cli(capsys, "list")
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()] == ["payments", "storage", "search", "default"]
    assert 'receiver="storage-pager"' in out


def test_show_names_the_reference_and_never_the_key(
    teams_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = cli(capsys, "show", "payments")
    assert status == 0
    assert "routing key:       from env PAYMENTS_PD_KEY (set)" in out
    assert "announce channel:  #payments-incidents" in out
    assert "status page:       checkout=Checkout" in out
    for name in ("payments", "storage", "search", "default"):
        _, shown, _ = cli(capsys, "show", name)
        assert KEY not in shown
        assert "d" * 32 not in shown
    _, storage, _ = cli(capsys, "show", "storage")
    assert "from file" in storage
    assert "(present)" in storage
    assert "Europe/Berlin" in storage
    _, default, _ = cli(capsys, "show", "default")
    assert "SEVFLOW_PAGERDUTY_ROUTING_KEY (set)" in default
    assert "announce channel:  #incidents" in default
    status, _, err = cli(capsys, "show", "nope")
    assert status == 1
    assert "no team 'nope'" in err


def test_show_says_when_a_referenced_variable_is_not_set(
    teams_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYMENTS_PD_KEY")
    status, out, _ = cli(capsys, "show", "payments")
    assert status == 0
    assert "from env PAYMENTS_PD_KEY (NOT SET)" in out


def test_match_explains_the_choice(teams_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "match", "alertname=Disk", "service=index")
    assert status == 0
    assert out.splitlines() == [
        '  payments: no (team="payments" does not match)',
        '  storage: no (receiver="storage-pager" does not match)',
        "team search: all its matchers match",
    ]
    _, by_receiver, _ = cli(capsys, "match", "alertname=Disk", "--receiver", "storage-pager")
    assert by_receiver.splitlines()[-1] == "team storage: all its matchers match"
    _, unmatched, _ = cli(capsys, "match", "alertname=Disk")
    assert unmatched.splitlines()[-1] == "team default: no team of the teams file matches"


def test_a_bad_file_is_named_with_its_line(teams_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    teams_file.write_text(TEAMS.replace("routing_key: {env", "pagerduty_key: {env"))
    status, _, err = cli(capsys, "list")
    assert status == 2
    assert f"{teams_file}:4: unknown field 'pagerduty_key'" in err
