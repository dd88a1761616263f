"""A process asked to stop is gone within a bounded time, whatever its event loop waits on.

Why: the outbox relay's process (streams/relay_process.py) bounds each step of its stop (its last
rounds, its producer's close, its lease's release), yet one was found still running six minutes
after its worker had been killed, its Kafka gone for good: its loop idle, aiokafka's sender still
retrying, and the relay's own stop waiting on a step that outlasted its cancellation inside
aiokafka. Nothing it holds needs a clean exit to stay safe: unpublished events stay in the outbox
for the next relay, a transaction it left open is aborted by the broker (or fenced by the next
producer with its transactional id), and its lease expires.

:class:`HardStop` is armed when the stop is asked for; if the process is still there
``seconds`` later, a daemon thread logs why and ends it with :data:`EXIT_STUCK`.
"""

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["EXIT_STUCK", "HardStop", "exit_now"]

log = logging.getLogger(__name__)

#: The exit status of a process ended by :class:`HardStop` (EX_SOFTWARE).
EXIT_STUCK = 70


def exit_now(
    status: int, message: str, *, again: bool = False, end: Callable[[int], object] = os._exit
) -> None:
    """Log ``message`` and leave at once with ``status``, the logs flushed first. ``again``: the
    process is to be started again (``sevflow run``, Kubernetes, Compose); nothing it did not
    commit is lost. The worker's ways out (streams/app.py) and :class:`HardStop` leave this way."""
    log.error("%s; exiting with status %d%s", message, status, " to be started again" * again)
    for handler in logging.getLogger().handlers:
        handler.flush()
    end(status)


class HardStop:
    """Ends the process ``seconds`` after :meth:`arm`, unless it has ended by then."""

    def __init__(self, seconds: float, what: str, end: Callable[[int], object] = os._exit) -> None:
        self._seconds = seconds
        self._what = what
        self._end = end
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start the countdown (once: later calls change nothing)."""
        if self._timer is not None:
            return
        self._timer = threading.Timer(self._seconds, self._fire)
        self._timer.daemon = True  # (a process that ends by itself is not held by it)
        self._timer.start()

    def _fire(self) -> None:
        message = f"{self._what} still running {self._seconds:.0f}s after it was asked to stop"
        exit_now(EXIT_STUCK, message, end=self._end)
