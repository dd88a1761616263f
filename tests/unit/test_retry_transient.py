"""A database failure is retried with backoff until it passes; work is never skipped."""

from sqlalchemy.exc import OperationalError

from streams.app import retry_transient


async def test_retries_database_errors_until_success() -> None:
    delays: list[float] = []
    attempts = 0

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async def step() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 4:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return "stored"

    assert await retry_transient("test", step, sleep=sleep, max_delay=1.0) == "stored"
    assert delays == [0.2, 0.4, 0.8, 1.0]
