"""The one definition of "a clock" for sevflow's runtimes: a function that returns now.

Pure code takes ``now`` as an argument and never reads the clock; the runtimes that call it (the
receiver, the worker, the relay, the operator commands) hold a :data:`Clock` and are handed
:func:`utc_now` in production and a fake in tests. :func:`utc_now` is the only clock read in
models/, and it is never called from models/ itself: it is the default a runtime passes down.

The sinks' loops also wait (retries, pacing): :class:`sinks.clock.Clock` adds ``sleep`` and
``monotonic`` and reads "now" through :func:`utc_now`.
"""

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

#: A source of the current time: aware, UTC.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware UTC (the production :data:`Clock`)."""
    return datetime.now(UTC)
