"""The per-source token bucket, with time passed in."""

from receiver.ratelimit import RateLimiter, retry_after_header


def test_burst_then_rate_per_source() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.acquire("10.0.0.1", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("10.0.0.1", 0.0) == 0.5
    assert limiter.acquire("10.0.0.2", 0.0) == 0.0  # another source has its own bucket
    assert limiter.acquire("10.0.0.1", 0.5) == 0.0
    assert limiter.acquire("10.0.0.1", 0.5) > 0


def test_disabled_never_limits() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.acquire("x", 0.0) == 0.0 for _ in range(10_000))


def test_source_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_sources=10)
    for i in range(100):
        limiter.acquire(f"10.0.0.{i}", 0.0)
    assert len(limiter._buckets) <= 10
    assert limiter.acquire("10.0.0.99", 0.0) > 0  # the newest sources are still limited


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
