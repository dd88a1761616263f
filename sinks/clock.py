"""Time for the runtime parts of the sinks: read it and wait on it through one object.

Pure code takes ``now`` as an argument; the loops that need to wait (retries, the circuit
breaker, per-channel pacing) hold a :class:`Clock`, so tests pass a fake that advances instantly.

This is a different concept from :data:`models.clock.Clock` (a function returning now, all the
other runtimes need): the sinks also sleep and measure deadlines on a monotonic clock, so their
fake must advance all three together. Where the two overlap, reading now, :class:`SystemClock`
reads it through :func:`models.clock.utc_now`, the one production clock read.
"""

import asyncio
import time
from datetime import datetime
from typing import Protocol

from models.clock import utc_now

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, pacing)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
