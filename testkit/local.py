"""Where this checkout is, a loopback port nobody listens on, and a child process never left
running by a test that failed."""

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

P = TypeVar("P", bound="subprocess.Popen[Any]")

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def reaped(process: P) -> Iterator[P]:
    """``process``, killed and waited for on leaving if it still runs (a test that failed
    before it stopped it)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
