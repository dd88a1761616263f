"""``sevflow run``'s supervisor: the roles as child processes, each started again when it exits.

A role that exits without being asked (a crash, the kernel's OOM killer, the worker's stall exit)
is logged, marked ``restarting`` and started again after the backoff of
:class:`models.supervision.RestartPolicy`; the other roles keep serving meanwhile. A role that
crash-loops (``limit`` exits within ``window`` seconds) makes the supervisor stop every role and
exit 1, naming that role. SIGINT/SIGTERM to the supervisor is passed on to every running role,
and the supervisor exits 0 once they stopped.

The supervisor writes each change to a status file (:data:`STATUS_FILE` in the data directory,
replaced atomically): ``sevflow status`` prints it, the receiver exports it on ``/metrics``.
"""

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from models.supervision import RestartPolicy, RoleState, RoleStatus, describe_exit, dumps

__all__ = ["STATUS_FILE", "supervise"]

log = logging.getLogger("sevflow")

#: The status file's name in SEVFLOW_DATA_DIR.
STATUS_FILE = "roles.json"


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
    children = [_Role(name, argv) for name, argv in roles.items()]
    stopping = threading.Event()  # set by SIGINT/SIGTERM

    def write_status() -> None:
        if status_path is None:
            return
        status_path.parent.mkdir(parents=True, exist_ok=True)
        partial = status_path.with_name(f".{status_path.name}.{os.getpid()}")
        partial.write_text(dumps(os.getpid(), [c.status() for c in children]))
        partial.replace(status_path)

    def start(child: _Role) -> None:
        child.process = subprocess.Popen(child.argv, env=os.environ.copy())  # noqa: S603
        child.state, child.since = "up", wall()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for child in children:
        start(child)
    write_status()
    crash_loop: _Role | None = None
    while not stopping.is_set() and crash_loop is None:
        changed = False
        for child in children:
            if stopping.is_set():  # a signal came meanwhile: start nothing more
                break
            now = monotonic()
            if child.state == "restarting" and now >= child.start_at:
                start(child)
                child.restarts += 1
                log.warning("%s started again (restart %d)", child.name, child.restarts)
                changed = True
            elif child.state == "up" and child.process is not None:
                code = child.process.poll()
                if code is None or stopping.is_set():
                    continue
                child.exits = [*policy.recent(child.exits, now), now]
                child.last_exit, child.since, changed = describe_exit(code), wall(), True
                if policy.crash_loops(child.exits, now):
                    child.state = "down"
                    crash_loop = child
                    break
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
        if changed:
            write_status()
        time.sleep(poll)
    if crash_loop is not None:
        log.error(
            "%s crash-loops: %d exits within %.0fs (last: %s); stopping every role",
            crash_loop.name,
            len(crash_loop.exits),
            policy.window,
            crash_loop.last_exit,
        )
        stop(signal.SIGTERM, None)
    for child in children:
        if child.process is not None:
            child.process.wait()
        if child.state != "down":
            child.state, child.since = "down", wall()
    write_status()
    return 1 if crash_loop is not None else 0
