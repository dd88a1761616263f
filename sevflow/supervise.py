"""``sevflow run``: the roles as child processes, each started again when it exits.

A role that exits without being asked (a crash, the kernel's OOM killer, the worker's stall exit)
is logged, marked ``restarting`` and started again after the backoff of
:class:`models.supervision.RestartPolicy`; the other roles keep serving meanwhile. A role that
crash-loops (``limit`` exits within ``window`` seconds) makes the supervisor stop every role and
exit 1, naming that role. SIGINT/SIGTERM/SIGHUP to the supervisor is passed on to every running
role, and the supervisor exits 0 once they stopped; a supervisor killed outright (SIGKILL) takes
its roles with it (Linux: each role gets SIGTERM when its parent dies).

The supervisor writes each change to a status file (:data:`STATUS_FILE` in the data directory,
replaced atomically): ``sevflow status`` prints it, the receiver exports it on ``/metrics``.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from models.settings import Settings
from models.supervision import RestartPolicy, RoleState, RoleStatus, describe_exit, dumps

__all__ = ["ROLES", "STATUS_FILE", "run_all", "supervise"]

log = logging.getLogger("sevflow")

#: The status file's name in SEVFLOW_DATA_DIR.
STATUS_FILE = "roles.json"
#: The roles ``sevflow run`` starts, each as ``python -m sevflow ROLE``.
ROLES = ("worker", "receiver", "sinks")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _end_with_parent() -> None:
    """In a role's process, before it runs (Linux): SIGTERM when the supervisor dies, whatever
    kills it (SIGKILL, the OOM killer), so no role serves on with nobody to restart it or stop
    it. Elsewhere nothing: the supervisor still stops its roles on every signal it can catch."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class _Role:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    state: RoleState = "down"
    since: float = 0.0
    exits: list[float] = field(default_factory=list)  # monotonic seconds
    restarts: int = 0
    last_exit: str | None = None
    start_at: float = 0.0  # monotonic seconds, while restarting

    def status(self) -> RoleStatus:
        pid = self.process.pid if self.process is not None and self.state == "up" else None
        return RoleStatus(self.name, self.state, pid, self.restarts, self.last_exit, self.since)


class _Supervisor:
    """The state of one ``supervise`` call: its roles, the policy, the clocks, the status file."""

    def __init__(
        self,
        roles: Mapping[str, Sequence[str]],
        policy: RestartPolicy,
        status_path: Path | None,
        monotonic: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.children = [_Role(name, argv) for name, argv in roles.items()]
        self.policy = policy
        self.status_path = status_path
        self.monotonic = monotonic
        self.wall = wall
        self.stopping = threading.Event()  # set by SIGINT/SIGTERM
        #: The last write of the status file failed (logged once until one succeeds).
        self.status_unwritten = False

    def write_status(self) -> None:
        """Replace the status file. A write that fails (a full disk, the data directory removed)
        is logged, once until a write succeeds again, and the roles go on: the file is for
        ``sevflow status`` and ``/metrics``, the roles' serving does not depend on it."""
        if self.status_path is None:
            return
        partial = self.status_path.with_name(f".{self.status_path.name}.{os.getpid()}")
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(dumps(os.getpid(), [c.status() for c in self.children]))
            partial.replace(self.status_path)
        except OSError as exc:
            if not self.status_unwritten:
                log.warning("cannot write %s: %s; the roles go on", self.status_path, exc)
            self.status_unwritten = True
            return
        self.status_unwritten = False

    def start(self, child: _Role) -> None:
        child.process = subprocess.Popen(  # noqa: S603
            child.argv, env=os.environ.copy(), preexec_fn=_end_with_parent
        )
        child.state, child.since = "up", self.wall()

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    def exited(self, child: _Role, code: int, now: float) -> bool:
        """Record ``child``'s exit; True when it crash-loops, else it restarts after the backoff."""
        policy = self.policy
        child.exits = [*policy.recent(child.exits, now), now]
        child.last_exit, child.since = describe_exit(code), self.wall()
        if policy.crash_loops(child.exits, now):
            child.state = "down"
            return True
        delay = policy.delay(child.exits, now)
        child.state, child.start_at = "restarting", now + delay
        log.error(
            "%s exited (%s); starting it again in %.0fs (%d of %d exits within %.0fs "
            "before sevflow run gives up); the other roles keep serving",
            child.name,
            child.last_exit,
            delay,
            len(child.exits),
            policy.limit,
            policy.window,
        )
        return False

    def round(self) -> tuple[bool, _Role | None]:
        """One look at every role: (whether anything changed, the role that crash-loops)."""
        changed = False
        for child in self.children:
            if self.stopping.is_set():  # a signal came meanwhile: start nothing more
                break
            now = self.monotonic()
            if child.state == "restarting" and now >= child.start_at:
                self.start(child)
                child.restarts += 1
                log.warning("%s started again (restart %d)", child.name, child.restarts)
                changed = True
            elif child.state == "up" and child.process is not None:
                code = child.process.poll()
                if code is None or self.stopping.is_set():
                    continue
                changed = True
                if self.exited(child, code, now):
                    return changed, child
        return changed, None

    def wait_all(self) -> None:
        for child in self.children:
            if child.process is not None:
                child.process.wait()
            if child.state != "down":
                child.state, child.since = "down", self.wall()
        self.write_status()


def supervise(
    roles: Mapping[str, Sequence[str]],
    policy: RestartPolicy | None = None,
    status_path: Path | None = None,
    poll: float = 0.2,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> int:
    """Run each role's command until SIGINT/SIGTERM (0) or until one crash-loops (1)."""
    policy = policy or RestartPolicy()
    supervisor = _Supervisor(roles, policy, status_path, monotonic, wall)
    signal.signal(signal.SIGINT, supervisor.stop)
    signal.signal(signal.SIGTERM, supervisor.stop)
    # A hang-up (the terminal closed, ``kill -HUP``) ended the supervisor alone by default and
    # left its roles running, unsupervised; it stops them like SIGTERM (there is no reload).
    signal.signal(signal.SIGHUP, supervisor.stop)
    crash_loop: _Role | None = None
    try:
        for child in supervisor.children:
            supervisor.start(child)
        supervisor.write_status()
        while not supervisor.stopping.is_set() and crash_loop is None:
            changed, crash_loop = supervisor.round()
            if changed:
                supervisor.write_status()
            time.sleep(poll)
    except BaseException:
        # The supervisor fails (a role that cannot be started again: no memory for a process):
        # its roles stop with it rather than serve on, orphaned, with nobody restarting them.
        supervisor.stop(signal.SIGTERM, None)
        supervisor.wait_all()
        raise
    if crash_loop is not None:
        log.error(
            "%s crash-loops: %d exits within %.0fs (last: %s); stopping every role",
            crash_loop.name,
            len(crash_loop.exits),
            policy.window,
            crash_loop.last_exit,
        )
        supervisor.stop(signal.SIGTERM, None)
    supervisor.wait_all()
    return 1 if crash_loop is not None else 0


def run_all(settings: Settings) -> int:
    """Run the worker, the receiver and the sinks as child processes, each started again when it
    exits (:func:`supervise`)."""
    # (imported here: ``sevflow status`` reads STATUS_FILE from this module and needs no store)
    from sevflow.roles.startup import (
        data_dir_problem,
        init_db,
        listeners_problem,
        worker_files_problem,
    )
    from sevflow.teams import teams_problem

    problem = (
        settings.webhook_auth_problem()
        or data_dir_problem(settings)
        or listeners_problem(settings, "receiver", "sinks")
        or worker_files_problem(settings)
        or teams_problem(settings)
    )
    if problem:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    status = init_db(settings)
    if status:
        return status
    return supervise(
        {role: [sys.executable, "-m", "sevflow", role] for role in ROLES},
        settings.restart_policy(),
        settings.data_dir / STATUS_FILE,
    )
