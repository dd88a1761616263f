"""Storm mode: when more incidents open in a minute than a threshold, SEV3/SEV4 notifications are
summarised in one digest per sink, while SEV1/SEV2 still go out one by one.

:class:`StormDetector` keeps the opening times it has seen (event time, not wall time, so a
replayed backlog is judged by when it happened) and is otherwise pure.
"""

import bisect
import heapq
from datetime import datetime, timedelta

from models.events import EventType, IncidentEvent
from models.severity import Severity

__all__ = ["DIGESTED_SEVERITIES", "StormDetector"]

DIGESTED_SEVERITIES = frozenset({Severity.SEV3, Severity.SEV4})
WINDOW = timedelta(minutes=1)


class StormDetector:
    def __init__(self, threshold: int, window: timedelta = WINDOW) -> None:
        self.threshold = threshold
        self.window = window
        self._opened: list[datetime] = []  # sorted
        self._seen: dict[str, datetime] = {}  # incident id -> opening (a redelivery counts once)
        #: The same openings, the earliest first, to forget them without a pass over all.
        self._expiring: list[tuple[datetime, str]] = []
        self.started_at: datetime | None = None

    def observe(self, events: list[IncidentEvent]) -> None:
        """Count the openings in ``events`` (a batch is counted before any of it is sent, so a
        storm arriving in one batch is recognised at once)."""
        for event in events:
            if (
                event.type is EventType.OPENED
                and not event.incident.canary
                and event.incident_id not in self._seen
            ):
                self._seen[event.incident_id] = event.occurred_at
                heapq.heappush(self._expiring, (event.occurred_at, event.incident_id))
                bisect.insort(self._opened, event.occurred_at)
        if self._opened:  # forget what no window can reach any more
            horizon = self._opened[-1] - 2 * self.window
            del self._opened[: bisect.bisect_left(self._opened, horizon)]
            while self._expiring and self._expiring[0][0] < horizon:
                del self._seen[heapq.heappop(self._expiring)[1]]

    def active(self, now: datetime) -> bool:
        """True while more than ``threshold`` incidents opened in the window ending at ``now``."""
        in_window = bisect.bisect_right(self._opened, now) - bisect.bisect_left(
            self._opened, now - self.window
        )
        storming = in_window > self.threshold
        if storming and self.started_at is None:
            self.started_at = now
        elif not storming:
            self.started_at = None
        return storming

    def digests(self, event: IncidentEvent) -> bool:
        """Whether this event goes into the digest instead of out on its own."""
        return (
            event.type is EventType.OPENED
            and not event.incident.canary  # the canary goes out on its own, storm or not
            and event.incident.severity in DIGESTED_SEVERITIES
            and self.active(event.occurred_at)
        )

    @property
    def storm_id(self) -> str:
        """Names the current storm (its start, to the second); one digest per storm and sink."""
        assert self.started_at is not None
        return f"{self.started_at:%Y%m%dT%H%M%S}"
