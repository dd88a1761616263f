"""aiokafka's repeated log lines, let through once per interval with a count of those held back.

Why: some of aiokafka's retry loops log every attempt with no pause between them. With a topic
deleted under a running consumer, its fetcher asks for metadata again as soon as an answer
arrives and logs "Topic … not found in cluster metadata" each time: about 6,000 lines a second
per process, which fills a disk and buries the line that says what happened. The first line of a
kind still goes out at once; the same text again within :data:`INTERVAL` seconds is counted
instead, and the count rides on the next one let through.
"""

import logging
import time
from collections.abc import Callable

__all__ = ["INTERVAL", "RepeatLimit", "limit_repeats"]

#: Seconds during which the same line from a Kafka client logger is let through once.
INTERVAL = 10.0
#: Distinct lines remembered; beyond it the stale ones are forgotten (a forgotten line is simply
#: let through again).
_REMEMBERED = 1024


class RepeatLimit(logging.Filter):
    """Lets a record of a logger under ``prefixes`` through once per ``interval`` for each text;
    records of other loggers pass untouched."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka",),
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._interval = interval
        self._clock = clock
        #: (logger, level, text) -> [when it was last let through, how many held back since]
        self._seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            held = int(seen[1])
            record.msg = f"{text} (and {held} more like it in the last {now - seen[0]:.0f} s)"
            record.args = None
        self._remember(key, now)
        return True

    def _remember(self, key: tuple[str, int, str], now: float) -> None:
        if len(self._seen) >= _REMEMBERED:
            stale = [k for k, (at, _) in self._seen.items() if now - at >= self._interval]
            for k in stale:
                del self._seen[k]
            if len(self._seen) >= _REMEMBERED:
                self._seen.clear()
        self._seen[key] = [now, 0]


def limit_repeats(logger: logging.Logger | None = None) -> None:
    """Put a :class:`RepeatLimit` on every handler of ``logger`` (the root logger by default):
    a handler's filters see the records propagated from every logger below it."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(RepeatLimit())
