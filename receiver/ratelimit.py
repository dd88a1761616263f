"""Per-source rate limit (the playbook's emergency rate limit): a token bucket per client address.

Pure bookkeeping with ``now`` (monotonic seconds) passed in, so tests advance time instead of
sleeping. A refusal says how long until one request would be allowed again; the HTTP layer turns
that into 429 + Retry-After. (Alertmanager treats 429 as unrecoverable and re-sends the same
notification at the next ``group_interval`` tick, so a limited alert is delayed, not lost.)
"""

import math
from dataclasses import dataclass

__all__ = ["RateLimiter", "retry_after_header"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second per source with bursts of up to ``burst``; rate 0 = no limit."""

    def __init__(self, rate: float, burst: int, *, max_sources: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_sources = max_sources
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def acquire(self, source: str, now: float) -> float:
        """Take one token for ``source``; 0.0 when allowed, else seconds until one is available."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= self._max_sources:
                self._forget_full(now)
            bucket = self._buckets[source] = _Bucket(self._burst, now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no information any more."""
        refill = self._burst / self._rate
        self._buckets = {s: b for s, b in self._buckets.items() if now - b.updated < refill}
        if len(self._buckets) >= self._max_sources:  # all busy: forget the oldest half
            keep = sorted(self._buckets.items(), key=lambda i: i[1].updated)[self._max_sources // 2 :]
            self._buckets = dict(keep)


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After is whole seconds (RFC 9110 §10.2.3); never 0, which would invite a hot loop."""
    return str(max(1, math.ceil(wait_seconds)))
