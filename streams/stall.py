"""A worker whose Kafka consumer stopped delivering records stops itself, to be started again.

After a broker outage faust's consumer can rejoin its group and never fetch again: no error, the
agents wait, records pile up on the partitions the worker holds (faust-streaming issues #175 and
#523, open). Nothing inside the process brings it back; a new process does. So the worker watches
for exactly that: records waiting on its own partitions while its agents sit idle, with no batch
applied, for ``limit`` seconds. An agent busy with a batch (the store retrying, say) is not a
stall, and neither is an outage (the lag cannot be measured then).

Exiting loses nothing: offsets are committed only for applied records, so the next process takes
the waiting ones from the last commit. ``sevflow run`` starts a worker that exits with
:data:`EXIT_STALLED` again; under Kubernetes or Compose the restart policy does.
"""

import contextlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["EXIT_STALLED", "Activity", "StallWatch"]

#: The worker's exit status when it stopped itself on a stall (sysexits' EX_TEMPFAIL: try again).
EXIT_STALLED = 75


@dataclass
class Activity:
    """What the agents report: whether one is applying a batch, and how many they applied."""

    busy: int = 0
    batches: int = 0

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """Around one batch taken from the stream: busy inside, one more batch once done."""
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self.batches += 1


@dataclass
class StallWatch:
    """Decides, from periodic lag measurements, that the consumer has stalled."""

    limit: float
    _since: float | None = field(default=None, init=False)
    _batches: int = field(default=-1, init=False)

    def observe(
        self,
        now: float,
        lag: Mapping[tuple[str, int], int],
        assigned: Collection[tuple[str, int]],
        activity: Activity,
    ) -> float | None:
        """Seconds records have waited unserved on ``assigned`` partitions, once that reaches
        ``limit``; None while the worker is fine (or has not waited that long yet)."""
        waiting = sum(lag.get(tp, 0) for tp in assigned)
        progressed = activity.busy > 0 or activity.batches != self._batches
        self._batches = activity.batches
        if waiting == 0 or progressed:
            self._since = None
            return None
        if self._since is None:
            self._since = now
            return None
        stalled = now - self._since
        return stalled if stalled >= self.limit else None
