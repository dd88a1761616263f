"""When ``sevflow run`` starts a role again, and the status file it keeps of its roles.

The rule is the one users know from systemd (``Restart=`` with ``StartLimitBurst`` exits within
``StartLimitIntervalSec``) and Kubernetes (CrashLoopBackOff: a delay doubling up to a cap): a role
that exits without being asked is started again after :meth:`RestartPolicy.delay`; once
``limit`` exits fall within ``window`` seconds the role crash-loops and the supervisor gives up.
A worker's stall exit (``streams.stall.EXIT_STALLED``) is one exit like the others.

The status file (:class:`RoleStatus` as JSON, written by the supervisor) is what ``sevflow
status`` prints and what the receiver exports as ``sevflow_role_up`` and
``sevflow_role_restarts_total``. Pure: times are arguments (monotonic seconds for the policy,
Unix seconds for display).
"""

import json
import signal
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["RestartPolicy", "RoleState", "RoleStatus", "describe_exit", "dumps", "loads"]

RoleState = Literal["up", "restarting", "down"]


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff ``backoff`` seconds doubling per recent exit up to ``backoff_max``; give up when
    ``limit`` exits fall within ``window`` seconds."""

    backoff: float = 1.0
    backoff_max: float = 60.0
    limit: int = 5
    window: float = 300.0

    def recent(self, exits: Sequence[float], now: float) -> list[float]:
        """The exits (monotonic seconds) that still count at ``now``."""
        return [t for t in exits if now - t < self.window]

    def crash_loops(self, exits: Sequence[float], now: float) -> bool:
        """True when the role exited ``limit`` times within the window ending at ``now``."""
        return len(self.recent(exits, now)) >= self.limit

    def delay(self, exits: Sequence[float], now: float) -> float:
        """Seconds to wait before starting the role again after its latest exit (in ``exits``):
        ``backoff``, doubled for each earlier exit still in the window, at most ``backoff_max``."""
        count = max(1, len(self.recent(exits, now)))
        return float(min(self.backoff_max, self.backoff * 2 ** (count - 1)))


def describe_exit(returncode: int) -> str:
    """``status 3`` or ``killed by SIGKILL`` (Popen's negative return code is a signal)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"status {returncode}"


@dataclass(frozen=True)
class RoleStatus:
    """One role as the supervisor last saw it."""

    role: str
    state: RoleState
    pid: int | None
    restarts: int
    #: How the role last exited (:func:`describe_exit`), None before its first exit.
    last_exit: str | None
    #: Unix seconds since the role is in ``state``.
    since: float


def dumps(supervisor_pid: int, roles: Sequence[RoleStatus]) -> str:
    """The status file's text."""
    return json.dumps({"supervisor_pid": supervisor_pid, "roles": [asdict(r) for r in roles]}, indent=2)


def loads(text: str) -> tuple[int, list[RoleStatus]]:
    """The supervisor's pid and its roles from the status file's text (ValueError when it is not
    one)."""
    try:
        data = json.loads(text)
        supervisor = _pid(data["supervisor_pid"])
        roles = [RoleStatus(**r) for r in data["roles"]]
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not a sevflow status file: {exc}") from exc
    for role in roles:
        if role.pid is not None:
            _pid(role.pid)
        if not isinstance(role.since, int | float) or not 0 <= role.since < _YEAR_9000:
            raise ValueError(f"not a sevflow status file: {role.role}'s since is no time")
    return supervisor, roles


#: Unix seconds of 9000-01-01: a role's ``since`` beyond it is no time (and no date to print).
_YEAR_9000 = 221_845_392_000
#: The largest process id Linux gives (``/proc/sys/kernel/pid_max`` at most 2**22).
_PID_MAX = 2**22


def _pid(value: object) -> int:
    """A process id as the file holds it: a whole number from 1 (``kill(-1, 0)`` signals every
    process the user may, and a 20-digit one overflowed ``os.kill``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _PID_MAX:
        raise ValueError(f"not a sevflow status file: {value!r} is no process id")
    return value
