"""``sevflow status``: the roles of the running ``sevflow run`` and whether the receiver is ready.

Reads the supervisor's status file (sevflow/supervise.py) in SEVFLOW_DATA_DIR and asks the
receiver's ``/ready``. Exit status: 0 when every role is up and the receiver ready, 1 otherwise,
3 when no ``sevflow run`` is running with this data directory.
"""

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from models.supervision import RoleStatus, loads

__all__ = ["NAMES", "add_parsers", "run", "run_status"]

NAMES = ("status",)

#: Seconds to wait for the receiver's /ready.
READY_TIMEOUT = 5.0


def add_parsers(sub: Any) -> None:
    sub.add_parser(
        "status",
        help="the roles of the running `sevflow run` (state, restarts) and the receiver's /ready",
    )


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow status``."""
    return run_status(settings)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _row(role: RoleStatus) -> str:
    since = datetime.fromtimestamp(role.since, UTC).isoformat(timespec="seconds")
    pid = str(role.pid) if role.pid is not None else "-"
    last = role.last_exit or "-"
    return f"{role.role:<10} {role.state:<11} {pid:>8} {role.restarts:>8}  {since:<25} {last}"


def _receiver_ready(settings: Settings) -> str:
    """The receiver's answer to ``GET /ready``, in words.

    Asked with the standard library's ``http.client``: the URL is always plain http on this host,
    and importing httpx and building its client (which loads the CA bundle into a TLS context
    even for http) took about 230 ms of CPU, most of the command's time."""
    import http.client

    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "") else settings.http_host  # noqa: S104
    url = f"http://{f'[{host}]' if ':' in host else host}:{settings.http_port}/ready"
    connection = http.client.HTTPConnection(host, settings.http_port, timeout=READY_TIMEOUT)
    try:
        connection.request("GET", "/ready")
        response = connection.getresponse()
        status, text = response.status, response.read(200).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return f"not answering at {url} ({type(exc).__name__})"
    finally:
        connection.close()
    if status == 200:
        return "ready"
    return f"not ready at {url} (HTTP {status}: {text})"


def run_status(settings: Settings) -> int:
    """Print the roles and the receiver's readiness; the exit status of the module docstring."""
    from sevflow.supervise import STATUS_FILE

    path = settings.data_dir / STATUS_FILE
    try:
        supervisor, roles = loads(path.read_text())
    except FileNotFoundError:
        print(
            f"sevflow status: no sevflow run has used {settings.data_dir} ({path} is missing)",
            file=sys.stderr,
        )
        return 3
    except (OSError, ValueError) as exc:
        print(f"sevflow status: cannot read {path}: {exc}", file=sys.stderr)
        return 3
    if not _running(supervisor):
        print(f"sevflow run (pid {supervisor}) is not running; as it left its roles:")
    else:
        print(f"sevflow run (pid {supervisor})")
    print(f"{'ROLE':<10} {'STATE':<11} {'PID':>8} {'RESTARTS':>8}  {'SINCE':<25} LAST EXIT")
    for role in roles:
        print(_row(role))
    ready = _receiver_ready(settings)
    print(f"receiver /ready: {ready}")
    if not _running(supervisor):
        return 3
    return 0 if ready == "ready" and all(r.state == "up" for r in roles) else 1
