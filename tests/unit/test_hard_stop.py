"""A process asked to stop is ended if it is still there after its time (streams/hard_stop.py)."""

import subprocess
import sys
import threading

from streams.hard_stop import EXIT_STUCK, HardStop
from testkit.local import REPO


def test_an_armed_stop_ends_the_process_once_with_its_status() -> None:
    ended: list[int] = []
    fired = threading.Event()

    def end(status: int) -> None:
        ended.append(status)
        fired.set()

    stop = HardStop(0.05, "test process", end=end)
    stop.arm()
    stop.arm()  # (a second call starts no second countdown)
    assert fired.wait(5)
    threading.Event().wait(0.2)  # (time for a second countdown to fire, had there been one)
    assert ended == [EXIT_STUCK]


def test_a_stop_never_armed_never_ends_anything() -> None:
    ended: list[int] = []
    HardStop(0.01, "test process", end=ended.append)
    threading.Event().wait(0.1)
    assert ended == []


def test_a_process_held_by_a_wait_that_never_ends_is_ended_and_says_why() -> None:
    script = (
        "import logging, threading\n"
        "from streams.hard_stop import HardStop\n"
        "logging.basicConfig()\n"
        "HardStop(0.2, 'a stuck relay').arm()\n"
        "threading.Event().wait()  # never set\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == EXIT_STUCK
    assert "a stuck relay still running 0s after it was asked to stop" in done.stderr
