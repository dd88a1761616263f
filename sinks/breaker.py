"""A per-sink circuit breaker: stop hammering an API that keeps failing, for everyone; and the
vendor's "slow down" (a throttled answer's ``Retry-After``), which holds every call of the sink.

::

    closed --N consecutive failing incidents--> open --cooldown elapsed--> half-open
      ^                                          ^                            |
      '---------------- success -----------------+-------- failure -----------'

Pure state plus ``now`` (monotonic seconds) passed in; the retry loop asks :meth:`acquire` and
sleeps on its own clock, so while the breaker is open no call leaves the process. Half-open lets
one trial call through: the sink delivers several incidents at once, and all of them calling a
recovering API together is the hammering the breaker is there to stop. The others wait for the
trial's outcome; a trial that never reports (its task cancelled) is given up after a cooldown.

The breaker is evidence that the *vendor* is down, so it counts failing incidents, not failed
calls: one incident the vendor refuses (a 5xx for its dedup_key alone) fails again and again
while every other incident goes through, and opening the breaker on its retries held every other
incident's page behind it. A failure counts once per key (the incident) until a success; a call
without a key counts each time. A failed trial of an incident already failing before reopens
nothing: it says nothing new about the vendor, and another incident may try.
"""

from dataclasses import dataclass, field

__all__ = ["TRIAL_POLL", "CircuitBreaker"]

#: How often callers waiting on a half-open trial look again (seconds).
TRIAL_POLL = 0.5


@dataclass
class CircuitBreaker:
    failures_to_open: int
    cooldown: float
    #: Failing incidents (and keyless failed calls) since the last success.
    consecutive_failures: int = 0
    opened_at: float | None = None
    #: Every retryable failure since start (the sevflow_sink_failures_total metric).
    total_failures: int = 0
    #: When the half-open trial call left (None: no trial in flight).
    trial_at: float | None = None
    #: No call before this (a throttled answer's Retry-After), whatever the state.
    paused_until: float = 0.0
    #: The keys counted in ``consecutive_failures``.
    failing: set[str] = field(default_factory=set)

    def wait_time(self, now: float) -> float:
        """Seconds until a call may be made (0 when closed, or half-open with no trial in flight)."""
        pause = max(0.0, self.paused_until - now)
        if self.opened_at is None:
            return pause
        cooling = self.opened_at + self.cooldown - now
        if cooling > 0:
            return max(cooling, pause)
        if self.trial_at is not None and now - self.trial_at < self.cooldown:
            return max(min(TRIAL_POLL, self.trial_at + self.cooldown - now), pause)
        return pause

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
        self.failing.clear()

    def throttle(self, now: float, retry_after: float) -> None:
        """The vendor asked the sink to slow down: no call of this sink for ``retry_after``."""
        self.paused_until = max(self.paused_until, now + retry_after)

    def record_failure(self, now: float, key: str | None = None) -> None:
        """Count a retryable failure of incident ``key``; a failed trial call while half-open
        reopens at once, unless its incident was failing already."""
        self.total_failures += 1
        if key is not None and key in self.failing:
            if self.opened_at is not None and self.trial_at is not None:
                self.trial_at = None  # let another incident make the trial
            return
        if key is not None:
            self.failing.add(key)
        self.consecutive_failures += 1
        if self.opened_at is not None or self.consecutive_failures >= self.failures_to_open:
            self.opened_at = now
            self.trial_at = None
