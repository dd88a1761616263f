import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def test_help_documents_every_setting() -> None:
    from models.settings import Settings

    result = run_cli("--help")
    assert result.returncode == 0
    for name in Settings.model_fields:
        assert f"SEVFLOW_{name.upper()}" in result.stdout


def test_invalid_setting_is_a_clear_cli_error() -> None:
    result = run_cli("init-db", env={"SEVFLOW_TOPIC_PARTITIONS": "many", "PATH": ""})
    assert result.returncode != 0
    assert "SEVFLOW_TOPIC_PARTITIONS" in result.stderr
    assert "Traceback" not in result.stderr


def test_receiver_refuses_to_start_without_credentials() -> None:
    result = run_cli("receiver", env={"PATH": ""})
    assert result.returncode == 2
    assert "SEVFLOW_WEBHOOK_TOKENS" in result.stderr


def test_unsupported_database_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("init-db", env={"SEVFLOW_DATABASE_URL": "mysql://u:secretpw@h/db", "PATH": ""})
    assert result.returncode == 2
    assert "unsupported database 'mysql'" in result.stderr
    assert "secretpw" not in result.stderr


def test_unreachable_database_is_named_without_a_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        "SEVFLOW_DATABASE_URL": "postgresql://ops:secretpw@127.0.0.1:1/sevflow",
        "SEVFLOW_DATA_DIR": str(tmp_path),
        "SEVFLOW_WEBHOOK_TOKENS": "token",
        "PATH": "",
    }
    for command in ("init-db", "sinks", "worker"):
        result = run_cli(command, env=env)
        assert result.returncode == 1, (command, result.stderr)
        assert "cannot prepare the incident store: connection failed" in result.stderr, command
        assert "Traceback" not in result.stderr, command
        assert "secretpw" not in result.stderr, command


def test_explain_shows_the_data_breach_flag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"SEVFLOW_DATA_DIR": str(tmp_path), "PATH": ""}
    breach = run_cli(
        "explain",
        "alertname=Audit",
        "severity=warning",
        "-a",
        "impact=unauthorized data access",
        env=env,
    )
    assert breach.returncode == 0, breach.stderr
    assert "security:  yes" in breach.stdout
    assert "breach:    yes (a data breach" in breach.stdout
    assert "legal" in breach.stdout
    loss = run_cli(
        "explain", "alertname=ReplicaLag", "severity=warning", "-a", "impact=data loss", env=env
    )
    assert loss.returncode == 0, loss.stderr
    assert "data loss: yes (SEV1)" in loss.stdout
    assert "breach" not in loss.stdout
    assert "legal" not in loss.stdout  # legal is the data-breach contact, not data loss's


@pytest.mark.parametrize("role", ["worker", "sinks"])
def test_a_role_waiting_for_kafka_stops_on_a_signal(tmp_path, role: str) -> None:  # type: ignore[no-untyped-def]
    # asyncio cancelled the attempt in progress on SIGINT, the Kafka client took that for one more
    # failure, and the worker went on waiting its full minute; SIGTERM killed it (143). The sinks
    # did not wait at all: they exited 1 at once, and `sevflow run` stopped every role with them.
    env = {
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "SEVFLOW_DATA_DIR": str(tmp_path),
        "SEVFLOW_WORKER_METRICS_PORT": "0",
        "PATH": "",
    }
    for signum in (signal.SIGINT, signal.SIGTERM):
        with subprocess.Popen(
            [sys.executable, "-m", "sevflow", role],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as worker:
            try:
                assert worker.stderr is not None
                deadline = time.monotonic() + 30
                while "waiting for Kafka" not in worker.stderr.readline():
                    assert time.monotonic() < deadline, f"the {role} never said it waits for Kafka"
                worker.send_signal(signum)
                assert worker.wait(timeout=10) == 0
                assert f"{role} stopped before it started" in worker.stderr.read()
            finally:
                if worker.poll() is None:
                    worker.kill()


def _help(*command: str) -> str:
    import contextlib
    import io

    from sevflow.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*command, "--help"])
    return out.getvalue()


def test_every_command_help_documents_its_settings() -> None:
    # Only `sevflow --help` named any setting; `sevflow ack --help` did not say which Kafka or
    # topic it uses.
    from models.settings import Settings
    from sevflow.cli import COMMAND_SETTINGS

    assert {path[0] for path in COMMAND_SETTINGS} >= {
        "run", "receiver", "worker", "sinks", "init-db", "explain", "ack", "resolve",
        "escalations", "incidents", "report", "postmortem", "dlq", "maintenance",
    }  # fmt: skip
    for path, names in COMMAND_SETTINGS.items():
        shown = _help(*path)
        for name in names:
            field = Settings.model_fields[name]
            assert f"SEVFLOW_{name.upper()}  (default: " in shown, (path, name)
            assert str(field.description).split(".")[0] in shown, (path, name)
    ack = _help("ack")
    assert "SEVFLOW_KAFKA_BOOTSTRAP  (default: 127.0.0.1:19092)" in ack
    assert "SEVFLOW_COMMANDS_TOPIC  (default: sevflow-commands)" in ack
    assert "SEVFLOW_GROUP_BY  (default: (none))" in _help("explain")


def test_run_starts_a_stalled_worker_again_and_stops_with_the_others(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A worker exiting with EXIT_STALLED (its consumer stopped delivering) is started again; any
    other exit still stops every child."""
    from streams.stall import EXIT_STALLED

    starts = tmp_path / "starts"
    stalls_once = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(starts)!r})\n"
        "n = len(p.read_text()) if p.exists() else 0\n"
        "p.write_text('x' * (n + 1))\n"
        f"sys.exit({EXIT_STALLED} if n == 0 else 3) if n < 2 else time.sleep(60)\n"
    )
    sleeper = "import time; time.sleep(60)"
    script = (
        "import sys\n"
        "from sevflow.runner import supervise\n"
        f"sys.exit(supervise([[sys.executable, '-c', {stalls_once!r}], "
        f"[sys.executable, '-c', {sleeper!r}]], poll=0.05))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    # Started, stalled (75), started again, then exited 3: that stops the sleeper too, and run
    # fails (it said 0 whenever a child had died: stopping the others counted as being asked to).
    assert starts.read_text() == "xx"
    assert done.returncode in (3, 15), done.stderr
    assert "stopped itself (status 75); starting it again" in done.stderr
    assert "a child process exited; stopping the other" in done.stderr
