"""sinks.retry.retry_store: a sink waits for its store instead of failing (fake clock, no sleeps)."""

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from sinks.retry import retry_store
from testkit.fakes.clock import FakeClock


async def test_a_cut_connection_is_retried_with_growing_pauses() -> None:
    clock = FakeClock()
    calls = 0

    async def step() -> str:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise OperationalError("SELECT 1", {}, Exception("terminating connection"))
        return "done"

    started = clock.monotonic()
    assert await retry_store(step, clock=clock, what="test") == "done"
    assert calls == 4
    assert clock.monotonic() - started == pytest.approx(0.2 + 0.4 + 0.8)


async def test_a_store_bug_is_not_retried() -> None:
    async def step() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        await retry_store(step, clock=FakeClock(), what="test")
