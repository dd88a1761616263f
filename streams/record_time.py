"""The worker's record time: the watermark its timers fire on (models/watermark.py).

The metrics timer hands each consumer-lag measurement of the alerts topic to :meth:`RecordTime.observe`
(or :meth:`RecordTime.forget` when Kafka could not be measured); the quiet-period and maintenance
timers ask :meth:`RecordTime.watermark`, which combines the last measurement with the record time
applied per partition, read from the store (shared by every worker of the group). No recent
measurement, no watermark: the timers then do nothing, rather than act on the wall clock.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.watermark import watermark
from store.incidents import IncidentStore

__all__ = ["RecordTime"]


@dataclass(frozen=True)
class _Reading:
    lag: dict[int, int]
    measured_at: datetime


class RecordTime:
    """The alerts topic's watermark, from lag measurements and the store's partition progress."""

    def __init__(self, store: IncidentStore, *, max_age: timedelta) -> None:
        self._store = store
        self._max_age = max_age
        self._reading: _Reading | None = None

    def observe(self, lag: Mapping[int, int], measured_at: datetime) -> None:
        """A lag measurement of every partition of the alerts topic, started at ``measured_at``."""
        self._reading = _Reading(dict(lag), measured_at)

    def forget(self) -> None:
        """The lag could not be measured: until it is again, there is no watermark."""
        self._reading = None

    async def watermark(self, now: datetime) -> datetime | None:
        """The record time applied on every partition, or None (no measurement younger than
        ``max_age`` at ``now``, or a partition with records waiting and none applied yet); never
        later than ``now``: nothing is applied before it is received, so a later mark is a
        receiver's clock ahead of this worker's (or a progress stored before the worker bounded
        it by its own clock), and acting on it would end quiet periods early."""
        reading = self._reading
        if reading is None or now - reading.measured_at > self._max_age:
            return None
        mark = watermark(await self._store.partition_progress(), reading.lag, reading.measured_at)
        return None if mark is None else min(mark, now)
