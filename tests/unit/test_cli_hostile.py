"""Bad input to the command line gets a message naming the problem and a non-zero status, never
a traceback; what callers wrote is listed escaped. Each case below printed a traceback, exited 0,
or wrote raw control characters before."""

from pathlib import Path

import pytest

from tests.unit.test_cli import run_cli


def env_of(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"PATH": "", "SEVFLOW_DATA_DIR": str(tmp_path / "data"), **more}


def refused(result_stderr: str, status: int, wanted_status: int, words: str) -> None:
    assert "Traceback" not in result_stderr, result_stderr
    assert status == wanted_status, result_stderr
    assert words in result_stderr, result_stderr


@pytest.mark.parametrize("command", ["ack", "resolve", "escalate", "note", "escalations"])
def test_an_incident_id_longer_than_the_store_takes_is_a_usage_error(
    tmp_path: Path, command: str
) -> None:
    """With the store unreadable the command was queued unchecked, and the id's validation raised."""
    extra = ["some words"] if command == "note" else []
    result = run_cli(command, "i" * 65, *extra, env=env_of(tmp_path))
    refused(result.stderr, result.returncode, 2, "an incident id has 1 to 64 characters, not 65")


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("SEVFLOW_ESCALATION_REPAGE_AFTER_MINUTES", "inf", "Input should be a finite number"),
        ("SEVFLOW_KAFKA_TIMEOUT_SECONDS", "inf", "Input should be a finite number"),
        ("SEVFLOW_RESTART_BACKOFF_SECONDS", "nan", "Input should be a finite number"),
        ("SEVFLOW_ESCALATION_SECONDARY_AFTER_MINUTES", "99999999999999", "less than or equal to 525600"),
        ("SEVFLOW_RETENTION_DAYS", "99999999999", "less than or equal to 36500"),
        ("SEVFLOW_DATA_DIR", "", "SEVFLOW_DATA_DIR: names no directory"),
    ],
)
def test_settings_beyond_what_a_command_can_use_are_refused_by_name(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    result = run_cli("report", env={**env_of(tmp_path), variable: value})
    refused(result.stderr, result.returncode, 1, words)


def test_a_data_dir_that_is_a_file_is_refused_by_name(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    result = run_cli("init-db", env={**env_of(tmp_path), "SEVFLOW_DATA_DIR": str(file)})
    refused(result.stderr, result.returncode, 1, f"{file} exists and is not a directory")


@pytest.mark.parametrize(
    ("variable", "command", "words"),
    [
        ("SEVFLOW_ESCALATION_POLICY_FILE", "report", "not UTF-8 text (byte 0)"),
        ("SEVFLOW_TEAMS_FILE", "report", "not UTF-8 text (byte 0)"),
        ("SEVFLOW_RULES_FILE", "explain", "not UTF-8 text (byte 0)"),
        ("SEVFLOW_VERIFY_FILE", "explain", "not UTF-8 text (byte 0)"),
    ],
)
def test_a_file_that_is_not_utf8_is_named(
    tmp_path: Path, variable: str, command: str, words: str
) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    extra = ["alertname=x"] if command == "explain" else []
    result = run_cli(command, *extra, env={**env_of(tmp_path), variable: str(binary)})
    refused(result.stderr, result.returncode, 1 if command == "report" else 2, str(binary))
    assert words in result.stderr


def test_counts_ages_and_unknown_incidents_are_told(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    assert run_cli("init-db", env=env).returncode == 0
    for limit in ("0", "-1", "99999999999999999999"):
        result = run_cli("audit", "--limit", limit, env=env)
        refused(result.stderr, result.returncode, 2, "must be from 1 to 1,000,000,000")
    ago = run_cli("audit", "--since", "7d", env=env)  # as its help and incidents list write it
    assert (ago.returncode, ago.stdout.strip()) == (0, "no audit entries"), ago.stderr
    result = run_cli("purge", "--older-than", "999999d", env=env)
    refused(result.stderr, result.returncode, 2, "reaches before the year 1")
    result = run_cli("escalations", "inc_nope", env=env)
    refused(result.stderr, result.returncode, 1, "no incident inc_nope")


def test_a_windows_matchers_and_comment_are_listed_escaped(tmp_path: Path) -> None:
    env = env_of(tmp_path)
    assert run_cli("init-db", env=env).returncode == 0
    added = run_cli(
        "maintenance", "add", "-m", 'service="a\x01\nb"', "--end", "+2h",
        "--comment", "x\x1b[31mred\nnext " + "y" * 3000, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert '"a\\x01\\x0ab"' in added.stdout
    listed = run_cli("maintenance", "list", env=env)
    (_, row) = listed.stdout.splitlines()
    assert "\x1b" not in row
    assert '"a\\x01\\x0ab"' in row
    assert "x [31mred next yyy" in row
    assert len(row) < 2200  # the comment is kept to a note's 2,000 characters
    backwards = run_cli(
        "maintenance", "add", "-m", 'service="a"', "--start", "+2h", "--end", "+1h", env=env
    )
    refused(backwards.stderr, backwards.returncode, 2, "sevflow maintenance: the window must end")


@pytest.mark.parametrize(
    "command", [["schema"], ["init-db"], ["maintenance", "add"], ["incidents", "show"]]
)
def test_every_commands_help_says_what_it_does(command: list[str]) -> None:
    result = run_cli(*command, "--help", env={"PATH": ""})
    assert result.returncode == 0
    usage, description = result.stdout.split("\n\n")[:2]
    assert usage.startswith("usage: sevflow")
    assert description.strip()
    assert not description.startswith(("options:", "positional"))
