"""Record time: how far the worker has applied the alerts topic, as a time (a watermark).

Timers that act on the alerts' time (the quiet period, a maintenance window's end) fire when the
records *applied* have passed their deadline, not when the wall clock has: after a Kafka or
database outage, or a restart with lag, the backlog may still hold the record that changes the
outcome (the renewed firing, the resolution). Stream processors call this event time (Flink,
Beam, Kafka Streams' stream time).

The watermark is the oldest, over the alerts topic's partitions, of how far each is applied:

* a partition's newest applied ``received_at`` (kept per partition in the store, in the
  transaction that applies the records, so every worker of the group reads the same values);
* for a partition whose consumer lag was 0 when measured (idle: nothing waits on it), the time
  of that measurement, if later;
* a partition with no applied record and records waiting (or no lag measurement at all) holds
  the watermark back: no measurement, no watermark, and nothing expires.

Receivers stamp ``received_at`` with their own clocks, so the watermark is as exact as they are
in step with one another. Nothing here reads a clock.
"""

from collections.abc import Mapping
from datetime import datetime

__all__ = ["watermark"]


def watermark(
    applied: Mapping[int, datetime], lag: Mapping[int, int], measured_at: datetime
) -> datetime | None:
    """The record time every partition of the alerts topic has been applied up to, or None.

    ``applied``: per partition, the newest ``received_at`` applied. ``lag``: per partition of the
    topic (all of them: the partitions not listed are not counted), the records waiting when
    measured at ``measured_at`` (read before the measurement started). None when a partition
    has neither an applied record nor a lag of 0, or when ``lag`` lists no partition.
    """
    if not lag:
        return None
    marks: list[datetime] = []
    for partition, behind in lag.items():
        candidates = [t for t in (applied.get(partition),) if t is not None]
        if behind == 0:
            candidates.append(measured_at)
        if not candidates:
            return None
        marks.append(max(candidates))
    return min(marks)
