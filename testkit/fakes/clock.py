"""A clock tests move by hand: ``sleep`` advances it instead of waiting.

Shared by a sink (retries, breaker, pacing) and a fake server (outage windows, rate limits), so
a five-minute outage passes in milliseconds and both sides agree on what time it is.
"""

import asyncio
import heapq
import itertools
import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock", "SteppedClock"]


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)) -> None:
        self._start = start
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class SteppedClock:
    """A clock that moves only when the test moves it; ``sleep`` waits for that.

    :class:`FakeClock` moves whenever anything sleeps, so one task backing off moves every other
    task's time too. Here time stands still until :meth:`advance`: what a sink does without
    waiting for its clock happens at the same instant, and a task waiting on the clock (a retry,
    the circuit breaker) goes on only once the test has moved time past its wake-up.
    """

    def __init__(self, start: datetime = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)) -> None:
        self._start = start
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleeper whose time has come (call it on the loop)."""
        with self._lock:
            self._elapsed += seconds
            now = self._elapsed
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.monotonic() + seconds, next(self._order), future))
        await future
