"""SQLite: the async engine keeps the connections it opened, so writers that waited for the write
lock together do not each open and close a connection the next time (store/db.py)."""

import asyncio
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import async_engine, sync_engine
from store.schema import leases
from store.tables import metadata
from tests.builders import T0

WRITERS = 12  # more than SQLAlchemy's default pool (5), within its overflow (10)


def sqlite_engine(tmp_path: Path) -> AsyncEngine:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return async_engine(url)


async def until(check, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def write(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(leases.insert().values(name=name, holder="", token=0, expires_at=T0))


async def a_round(engine: AsyncEngine, tag: str) -> None:
    """``WRITERS`` writes waiting together behind a held write lock (as behind the worker's), then
    let through."""
    async with engine.begin() as holder:
        await holder.execute(leases.insert().values(name=tag, holder="", token=0, expires_at=T0))
        tasks = [asyncio.create_task(write(engine, f"{tag}-{i}")) for i in range(WRITERS)]
        await until(lambda: engine.sync_engine.pool.checkedout() == WRITERS + 1)  # type: ignore[attr-defined]
    await asyncio.gather(*tasks)


async def test_writers_that_waited_together_reuse_their_connections(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    try:
        await a_round(engine, "first")
        first = len(opened)
        assert first == WRITERS + 1
        await a_round(engine, "second")
        assert len(opened) == first  # no connection opened again
    finally:
        await engine.dispose()
