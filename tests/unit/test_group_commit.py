"""Group commit: concurrent writes share transactions, each caller learns its own outcome."""

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.combining import GroupCommit
from store.schema import leases
from tests.builders import T0


def lease_row(name: str) -> dict[str, object]:
    return {"name": name, "holder": "", "token": 0, "expires_at": T0}


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(leases))).scalar_one())


async def test_concurrent_submissions_share_one_transaction(engine: AsyncEngine) -> None:
    batches: list[list[str]] = []

    async def write(conn: AsyncConnection, names: Sequence[str]) -> None:
        batches.append(list(names))
        await conn.execute(leases.insert(), [lease_row(n) for n in names])

    committed: list[str] = []
    group = GroupCommit(engine, write, committed=committed.extend, max_batch=4)
    await asyncio.gather(*(group.submit(f"lease-{i}") for i in range(10)))
    assert batches == [[f"lease-{i}" for i in range(j, min(j + 4, 10))] for j in (0, 4, 8)]
    assert committed == [f"lease-{i}" for i in range(10)]
    assert await count(engine) == 10


async def test_a_failed_transaction_fails_its_callers_and_commits_nothing(engine: AsyncEngine) -> None:
    async def write(conn: AsyncConnection, names: Sequence[str]) -> None:
        await conn.execute(leases.insert(), [lease_row(n) for n in names])
        if "bad" in names:
            raise ValueError("refused")

    group = GroupCommit(engine, write)
    results = await asyncio.gather(
        group.submit("a"), group.submit("bad"), group.submit("c"), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError] * 3
    assert await count(engine) == 0
    await group.submit("later")  # the next flush is independent
    assert await count(engine) == 1


async def test_a_cancelled_caller_does_not_cancel_the_commit(engine: AsyncEngine) -> None:
    release = asyncio.Event()

    async def write(conn: AsyncConnection, names: Sequence[str]) -> None:
        await release.wait()
        await conn.execute(leases.insert(), [lease_row(n) for n in names])

    group = GroupCommit(engine, write)
    first = asyncio.create_task(group.submit("a"))
    second = asyncio.create_task(group.submit("b"))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await count(engine) == 2
