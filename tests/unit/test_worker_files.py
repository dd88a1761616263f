"""The files the worker reads at start (rules, escalation policy, probes) and the data folder:
a bad one stops ``sevflow worker`` and ``sevflow run`` at once, with its message and no
traceback. Before, the worker died with a traceback at every restart while ``run``'s receiver
took alerts that nobody processed, until ``run`` gave up."""

import os
from pathlib import Path

import pytest

from tests.unit.test_cli import run_cli

PROBE = '- service: api\n  http_url: "http://127.0.0.1:9/health"\n'


@pytest.mark.parametrize(
    ("setting", "content", "words"),
    [
        ("SEVFLOW_RULES_FILE", "rules:\n  - name: x\n    match: [\n", "line 4: not valid YAML"),
        ("SEVFLOW_RULES_FILE", b"rules: []\n\xff\n", "not UTF-8 text (byte 10)"),
        ("SEVFLOW_ESCALATION_POLICY_FILE", None, "cannot be read (Is a directory)"),
        ("SEVFLOW_ESCALATION_POLICY_FILE", "levels: 3\n", ""),
        ("SEVFLOW_VERIFY_FILE", PROBE + PROBE, 'a second probe for service="api" (the first is in'),
    ],
)
@pytest.mark.parametrize("role", ["worker", "run"])
def test_a_bad_file_stops_the_start_with_its_message(
    tmp_path: Path, role: str, setting: str, content: str | bytes | None, words: str
) -> None:
    path = tmp_path / "the-file"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    env = {
        **os.environ,
        setting: str(path),
        "SEVFLOW_DATA_DIR": str(tmp_path / "data"),
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
    }
    started = run_cli(role, env=env)
    assert started.returncode == 2, started.stderr
    (line,) = started.stderr.splitlines()
    assert line.startswith(f"sevflow: {path}")
    assert words in line
    assert "Traceback" not in started.stderr


@pytest.mark.parametrize("role", ["worker", "run"])
def test_a_data_dir_that_cannot_be_made_stops_the_start_naming_it(tmp_path: Path, role: str) -> None:
    (tmp_path / "taken").write_text("")
    data_dir = tmp_path / "taken" / "data"
    env = {
        **os.environ,
        "SEVFLOW_DATA_DIR": str(data_dir),
        # (on PostgreSQL too the worker keeps a folder there, and run its roles' status)
        "SEVFLOW_DATABASE_URL": "postgresql://sevflow:sevflow@127.0.0.1:9/sevflow",
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "SEVFLOW_ALLOW_UNAUTHENTICATED": "true",
    }
    started = run_cli(role, env=env)
    assert started.returncode == 2, started.stderr
    assert (
        started.stderr == f"sevflow: SEVFLOW_DATA_DIR {data_dir}: cannot be created (Not a directory)\n"
    )
