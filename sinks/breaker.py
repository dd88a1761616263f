"""A per-sink circuit breaker: stop hammering an API that keeps failing.

::

    closed --N consecutive failures--> open --cooldown elapsed--> half-open
      ^                                  ^                            |
      '------------ success -------------+-------- failure -----------'

Pure state plus ``now`` (monotonic seconds) passed in; the retry loop asks :meth:`acquire` and
sleeps on its own clock, so while the breaker is open no call leaves the process. Half-open lets
one trial call through: the sink delivers several incidents at once, and all of them calling a
recovering API together is the hammering the breaker is there to stop. The others wait for the
trial's outcome; a trial that never reports (its task cancelled) is given up after a cooldown.
"""

from dataclasses import dataclass

__all__ = ["TRIAL_POLL", "CircuitBreaker"]

#: How often callers waiting on a half-open trial look again (seconds).
TRIAL_POLL = 0.5


@dataclass
class CircuitBreaker:
    failures_to_open: int
    cooldown: float
    consecutive_failures: int = 0
    opened_at: float | None = None
    #: Every retryable failure since start (the sevflow_sink_failures_total metric).
    total_failures: int = 0
    #: When the half-open trial call left (None: no trial in flight).
    trial_at: float | None = None

    def wait_time(self, now: float) -> float:
        """Seconds until a call may be made (0 when closed, or half-open with no trial in flight)."""
        if self.opened_at is None:
            return 0.0
        cooling = self.opened_at + self.cooldown - now
        if cooling > 0:
            return cooling
        if self.trial_at is not None and now - self.trial_at < self.cooldown:
            return min(TRIAL_POLL, self.trial_at + self.cooldown - now)
        return 0.0

    def acquire(self, now: float) -> float:
        """Like :meth:`wait_time`, and a caller told 0 while half-open becomes the trial."""
        wait = self.wait_time(now)
        if wait == 0 and self.opened_at is not None:
            self.trial_at = now
        return wait

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def record_success(self) -> None:
        """The API answered (a permanent error is an answer too): closed."""
        self.consecutive_failures = 0
        self.opened_at = None
        self.trial_at = None

    def record_failure(self, now: float) -> None:
        """Count a retryable failure; a failed trial call while half-open reopens at once."""
        self.consecutive_failures += 1
        self.total_failures += 1
        if self.opened_at is not None or self.consecutive_failures >= self.failures_to_open:
            self.opened_at = now
            self.trial_at = None
