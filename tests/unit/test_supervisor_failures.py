"""``sevflow run``'s supervisor when something of its own fails: its status file cannot be
written (a full disk, the data directory removed), or a role cannot be started again. Before, the
supervisor died of the exception and its roles served on, orphaned, restarted by nobody."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.supervision import loads
from testkit.harness import wait_for
from testkit.local import REPO, reaped

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _supervisor(roles: dict[str, list[str]], status: Path) -> subprocess.Popen[str]:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from models.supervision import RestartPolicy\n"
        "from sevflow.supervise import supervise\n"
        "policy = RestartPolicy(backoff=0.05, backoff_max=0.1, limit=5, window=60)\n"
        f"sys.exit(supervise({roles!r}, policy, Path({str(status)!r}), poll=0.02))\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pid_file_role(path: Path) -> list[str]:
    code = f"import os, time; open({str(path)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    return [sys.executable, "-c", code]


def _started(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text(), 20, f"{path.name} started"))


def test_a_status_file_that_cannot_be_written_leaves_the_roles_serving(tmp_path: Path) -> None:
    status = tmp_path / "data" / "roles.json"
    with reaped(_supervisor({"receiver": SLEEPER, "worker": SLEEPER}, status)) as supervisor:
        first = wait_for(
            lambda: status.exists() and {r.role: r for r in loads(status.read_text())[1]},
            20,
            "the status file",
        )
        shutil.rmtree(tmp_path / "data")
        (tmp_path / "data").write_text("")  # a file where the folder was: every write fails
        worker = first["worker"].pid
        assert worker is not None
        os.kill(worker, signal.SIGKILL)  # an exit: the status changes, its write fails
        time.sleep(1)
        assert supervisor.poll() is None  # still supervising
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, stderr
    assert "worker exited (killed by SIGKILL); starting it again" in stderr
    assert stderr.count(f"cannot write {status}") == 1, stderr
    assert "Traceback" not in stderr


def test_a_supervisor_that_fails_stops_its_roles(tmp_path: Path) -> None:
    started = tmp_path / "started"
    # The worker exits once, removing itself: its restart fails in the supervisor's Popen.
    worker = tmp_path / "worker.sh"
    worker.write_text('#!/bin/sh\nsleep 1\nrm "$0"\nexit 3\n')
    worker.chmod(0o755)
    roles = {"receiver": _pid_file_role(started), "worker": [str(worker)]}
    with reaped(_supervisor(roles, tmp_path / "r.json")) as supervisor:
        _, stderr = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1
    assert "FileNotFoundError" in stderr
    pid = int(started.read_text())
    wait_for(lambda: not _alive(pid), 10, "the receiver stopped with its supervisor")


def test_a_hang_up_stops_the_roles_like_sigterm(tmp_path: Path) -> None:
    """``kill -HUP`` (or the terminal closing) ended the supervisor alone, by Python's default,
    and its roles served on."""
    roles = {"receiver": _pid_file_role(tmp_path / "r"), "worker": _pid_file_role(tmp_path / "w")}
    with reaped(_supervisor(roles, tmp_path / "roles.json")) as supervisor:
        pids = [_started(tmp_path / "r"), _started(tmp_path / "w")]
        supervisor.send_signal(signal.SIGHUP)
        _, stderr = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, stderr
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), 10, f"role {pid} stopped")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_supervisor_killed_outright_takes_its_roles_with_it(tmp_path: Path) -> None:
    roles = {"receiver": _pid_file_role(tmp_path / "r"), "worker": _pid_file_role(tmp_path / "w")}
    supervisor = _supervisor(roles, tmp_path / "roles.json")
    try:
        pids = [_started(tmp_path / "r"), _started(tmp_path / "w")]
        supervisor.kill()  # SIGKILL: nothing of the supervisor's own runs
        supervisor.communicate(timeout=30)
        for pid in pids:
            wait_for(lambda pid=pid: not _alive(pid), 10, f"role {pid} ended with its parent")
    finally:
        for path in (tmp_path / "r", tmp_path / "w"):
            if path.exists() and _alive(pid := int(path.read_text())):
                os.kill(pid, signal.SIGKILL)
