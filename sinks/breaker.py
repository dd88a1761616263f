"""A per-sink circuit breaker: stop hammering an API that keeps failing.

::

    closed --N consecutive failures--> open --cooldown elapsed--> half-open
      ^                                  ^                            |
      '------------ success -------------+-------- failure -----------'

Pure state plus ``now`` (monotonic seconds) passed in; the retry loop asks :meth:`wait_time` and
sleeps on its own clock, so while the breaker is open no call leaves the process.
"""

from dataclasses import dataclass

__all__ = ["CircuitBreaker"]


@dataclass
class CircuitBreaker:
    failures_to_open: int
    cooldown: float
    consecutive_failures: int = 0
    opened_at: float | None = None
    #: Every retryable failure since start (the sevflow_sink_failures_total metric).
    total_failures: int = 0

    def wait_time(self, now: float) -> float:
        """Seconds until a call may be made (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown - now)

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None

    def record_failure(self, now: float) -> None:
        """Count a retryable failure; a failed trial call while half-open reopens at once."""
        self.consecutive_failures += 1
        self.total_failures += 1
        if self.opened_at is not None or self.consecutive_failures >= self.failures_to_open:
            self.opened_at = now
