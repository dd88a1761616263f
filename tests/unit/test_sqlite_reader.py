"""SQLite: a reader's transaction neither waits for a writer nor blocks one; writers still
serialise (BEGIN IMMEDIATE)."""

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import async_engine, reader, sync_engine
from store.schema import leases
from store.tables import metadata
from tests.builders import T0


def sqlite_engine(tmp_path: Path) -> AsyncEngine:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return async_engine(url)


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(leases))).scalar_one())


async def test_a_reader_sees_the_committed_snapshot_while_a_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    engine = sqlite_engine(tmp_path)
    try:
        async with engine.begin() as writer:
            await writer.execute(leases.insert().values(name="a", holder="", token=0, expires_at=T0))
            # The writer holds the write lock; a reader answers at once with the last commit.
            assert await asyncio.wait_for(count(reader(engine)), 2) == 0
            # A connection that may write waits for the lock instead.
            blocked = asyncio.create_task(count(engine))
            await asyncio.sleep(0.3)
            assert not blocked.done()
        assert await asyncio.wait_for(blocked, 10) == 1
        assert await count(reader(engine)) == 1
    finally:
        await engine.dispose()
