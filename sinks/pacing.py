"""Per-channel pacing with priority: Slack allows about one message per second per channel
(docs.slack.dev "Rate limits", chat.postMessage: "one message per second per channel").

Posts to one channel take turns at least ``interval`` apart; a waiting SEV1 goes before a waiting
SEV3 (lower rank first, then arrival order). Different channels never wait for each other.
"""

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sinks.clock import Clock

__all__ = ["ChannelPacer"]


class ChannelPacer:
    def __init__(self, clock: Clock, interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._next_free: dict[str, float] = {}
        self._busy: set[str] = set()
        self._waiting: dict[str, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._order = itertools.count()

    @asynccontextmanager
    async def slot(self, channel: str, rank: int) -> AsyncIterator[None]:
        """Hold the channel for one post; ``rank`` 1 (SEV1) is served first."""
        if channel in self._busy:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting.setdefault(channel, []), (rank, next(self._order), future))
            try:
                await future  # ownership handed over by _release
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release(channel)  # handed over, then cancelled before it ran: pass on
                raise
        else:
            self._busy.add(channel)
        try:
            wait = self._next_free.get(channel, 0.0) - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
            yield
        finally:
            self._release(channel)

    def _release(self, channel: str) -> None:
        self._next_free[channel] = self._clock.monotonic() + self._interval
        waiting = self._waiting.get(channel)
        while waiting:
            _, _, future = heapq.heappop(waiting)
            if not future.done():
                future.set_result(None)
                return
        self._busy.discard(channel)
