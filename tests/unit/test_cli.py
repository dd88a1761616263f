import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from models.supervision import RoleStatus, loads
from testkit.harness import wait_for
from testkit.local import REPO, reaped


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


def test_an_argument_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    """Python hands bytes it cannot decode on as lone surrogates; a window's comment holding one
    failed in the store with pydantic's serializer error as the only message."""
    env = {"SEVFLOW_DATA_DIR": str(tmp_path), "PATH": "", "LC_ALL": "C.UTF-8"}
    assert run_cli("init-db", env=env).returncode == 0
    args = [b"maintenance", b"add", b"-m", b'service="db"', b"--end", b"+1h", b"--comment", b"ok\xff"]
    refused = subprocess.run(
        [sys.executable.encode(), b"-m", b"sevflow", *args],
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr == b"sevflow: argument 8 is not valid UTF-8 text: ok\\xff\n"
    listed = run_cli("maintenance", "list", env=env)
    assert (listed.returncode, "db" in listed.stdout) == (0, False), listed.stderr


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


def _supervisor(tmp_path: Path, roles: dict[str, str], limit: int) -> subprocess.Popen[str]:
    """``supervise`` of ``roles`` (name: Python code) in a process of its own, a short backoff."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from models.supervision import RestartPolicy\n"
        "from sevflow.supervise import supervise\n"
        f"roles = {{name: [sys.executable, '-c', code] for name, code in {roles!r}.items()}}\n"
        f"policy = RestartPolicy(backoff=0.05, backoff_max=0.1, limit={limit}, window=60)\n"
        f"sys.exit(supervise(roles, policy, Path({str(tmp_path / 'roles.json')!r}), poll=0.02))\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE, text=True)


def _roles(tmp_path: Path) -> dict[str, RoleStatus]:
    path = tmp_path / "roles.json"
    return {r.role: r for r in loads(path.read_text())[1]} if path.exists() else {}


def test_run_starts_a_role_that_exited_again_and_keeps_the_others(tmp_path: Path) -> None:
    """A role that exits (a stall's 75, SIGKILL as the OOM killer sends) is started again after a
    backoff while the others keep running; SIGTERM then stops every role and run exits 0."""
    from streams.stall import EXIT_STALLED

    starts = tmp_path / "starts"
    flaky = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(starts)!r})\n"
        "n = len(p.read_text()) if p.exists() else 0\n"
        "p.write_text('x' * (n + 1))\n"
        f"sys.exit({EXIT_STALLED}) if n == 0 else time.sleep(60)\n"
    )
    sleeper = "import time; time.sleep(60)"
    with reaped(_supervisor(tmp_path, {"worker": flaky, "receiver": sleeper}, limit=5)) as supervisor:
        first = wait_for(lambda: _roles(tmp_path).get("receiver"), 20, "the status file")
        # The stall exit is one exit like the others: started again.
        worker = wait_for(
            lambda: (w := _roles(tmp_path)["worker"]).restarts == 1 and w.state == "up" and w,
            20,
            "the worker started again",
        )
        assert worker.last_exit == f"status {EXIT_STALLED}"
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker = wait_for(
            lambda: (w := _roles(tmp_path)["worker"]).restarts == 2 and w.state == "up" and w,
            20,
            "the worker started again after SIGKILL",
        )
        assert worker.last_exit == "killed by SIGKILL"
        receiver = _roles(tmp_path)["receiver"]
        assert (receiver.state, receiver.pid, receiver.restarts) == ("up", first.pid, 0)
        assert supervisor.poll() is None
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, stderr
    assert "worker exited (killed by SIGKILL); starting it again" in stderr
    assert {r.state for r in _roles(tmp_path).values()} == {"down"}


def test_run_gives_up_on_a_role_that_crash_loops(tmp_path: Path) -> None:
    with reaped(
        _supervisor(
            tmp_path, {"sinks": "import sys; sys.exit(3)", "receiver": "import time; time.sleep(60)"}, 3
        )
    ) as supervisor:
        _, stderr = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 1
    assert "sinks crash-loops: 3 exits within 60s (last: status 3); stopping every role" in stderr
    roles = _roles(tmp_path)
    assert (roles["sinks"].state, roles["sinks"].restarts) == ("down", 2)
    assert roles["receiver"].state == "down"
    assert roles["receiver"].last_exit is None  # asked to stop, not an exit of its own


def test_status_prints_the_roles_and_the_receiver_readiness(tmp_path: Path) -> None:
    from models.supervision import dumps
    from testkit.local import free_port

    env = {"PATH": "", "SEVFLOW_DATA_DIR": str(tmp_path), "SEVFLOW_HTTP_PORT": str(free_port())}
    missing = run_cli("status", env=env)
    assert missing.returncode == 3
    assert "no sevflow run has used" in missing.stderr
    for corrupt in (
        '{"supervisor_pid": 99999999999999999999, "roles": []}',  # overflowed os.kill
        '{"supervisor_pid": -1, "roles": []}',  # kill(-1, 0) "found" a running supervisor
        '{"supervisor_pid": 1, "roles": [{"role": "worker", "state": "up", "pid": 2, '
        '"restarts": 0, "last_exit": null, "since": 1e300}]}',  # no date to print
    ):
        (tmp_path / "roles.json").write_text(corrupt)
        unreadable = run_cli("status", env=env)
        assert unreadable.returncode == 3, unreadable.stderr
        assert "not a sevflow status file" in unreadable.stderr
        assert "Traceback" not in unreadable.stderr
    roles = [
        RoleStatus("worker", "restarting", None, 1, "killed by SIGKILL", 1700000000.0),
        RoleStatus("receiver", "up", 4242, 0, None, 1700000000.0),
    ]
    (tmp_path / "roles.json").write_text(dumps(os.getpid(), roles))  # a running "supervisor"
    result = run_cli("status", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"sevflow run (pid {os.getpid()})"
    assert lines[2].split()[:4] == ["worker", "restarting", "-", "1"]
    assert lines[2].endswith("killed by SIGKILL")
    assert lines[3].split()[:4] == ["receiver", "up", "4242", "0"]
    assert lines[4].startswith("receiver /ready: not answering at http://127.0.0.1:")


def _status_against(tmp_path: Path, code: int, body: bytes) -> subprocess.CompletedProcess[str]:
    """``sevflow status`` of one receiver role up, against a /ready answering ``code``."""
    from models.supervision import dumps

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        env = {"PATH": "", "SEVFLOW_DATA_DIR": str(tmp_path), "SEVFLOW_HTTP_PORT": str(port)}
        roles = [RoleStatus("receiver", "up", 4242, 0, None, 1700000000.0)]
        (tmp_path / "roles.json").write_text(dumps(os.getpid(), roles))
        return run_cli("status", env=env)
    finally:
        server.shutdown()
        server.server_close()


def test_status_of_a_ready_receiver_prints_nothing_on_stderr(tmp_path: Path) -> None:
    result = _status_against(tmp_path, 200, b"ready")
    assert "receiver /ready: ready" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0
    assert result.stderr == ""  # (httpx logged each request at INFO, its URL included)


def test_status_of_a_receiver_not_ready_says_what_it_answered(tmp_path: Path) -> None:
    result = _status_against(tmp_path, 503, b'{"status":"kafka unreachable"}')
    assert result.returncode == 1
    assert 'HTTP 503: {"status":"kafka unreachable"})' in result.stdout, result.stdout
    assert "receiver /ready: not ready at http://127.0.0.1:" in result.stdout


#: Run by a fresh interpreter: the modules ``sevflow incidents list`` loaded, one per line.
_LOADED = """
import contextlib, io, sys
from sevflow.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    status = main(["incidents", "list"])
print(status)
print("\\n".join(sorted(sys.modules)))
"""


def test_a_store_command_loads_neither_kafka_nor_the_roles(tmp_path: Path) -> None:
    # Every command module was imported to build the parser, and with them aiokafka (through the
    # callbacks' CommandSink), aiohttp (Slack) and starlette: a command that reads the store paid
    # for all of them. What a command needs is now imported when it runs.
    env = {"PATH": os.environ.get("PATH", ""), "SEVFLOW_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _LOADED],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    status, *modules = result.stdout.split()
    assert status == "1"  # an empty data directory: no tables yet (the store was asked)
    assert "store.direct_reads" in modules  # it read the store, through the driver (no SQLAlchemy)
    top = {m.split(".")[0] for m in modules}
    assert not top & {"faust", "mode", "aiokafka", "uvicorn", "starlette", "aiohttp", "streams", "sinks"}
    assert not [m for m in modules if m.startswith("receiver")]


def _loaded_by(code: str, tmp_path: Path) -> list[str]:
    """The output of ``code`` run by a fresh interpreter in the repository: its last line first."""
    env = {"PATH": os.environ.get("PATH", ""), "SEVFLOW_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_store_command_loads_no_other_command_s_needs(tmp_path: Path) -> None:
    # The rules and runbooks (YAML, the classification's matchers) and the teams file's loader
    # were imported to build the parser: every command paid for them.
    _, *modules = _loaded_by(_LOADED, tmp_path)
    assert not [m for m in modules if m.startswith(("models.classification", "models.runbooks"))]
    assert not [
        m for m in modules if m.startswith(("sevflow.explain", "sevflow.teams", "store.maintenance"))
    ]


_PARSER_ONLY = """
import sys
from sevflow.cli import _parser
_parser().format_help()
print("\\n".join(sorted(sys.modules)))
"""


def test_building_the_parser_loads_no_store_client(tmp_path: Path) -> None:
    # `sevflow --help`, `sevflow explain`, `sevflow runbooks …` never touch SQLAlchemy.
    modules = _loaded_by(_PARSER_ONLY, tmp_path)
    assert not [m for m in modules if m.split(".")[0] in {"sqlalchemy", "aiosqlite", "asyncpg"}]


def test_the_incidents_parser_s_limit_is_the_store_s_page_size() -> None:
    from analytics.incidents import MAX_PAGE_SIZE
    from sevflow.commands.incidents import MOST_ROWS

    assert MOST_ROWS == MAX_PAGE_SIZE
