"""SQLite connections of the async engine run on the loop's thread and wait for another
process's write lock without blocking the loop (store/sqlite_inline.py)."""

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.db import async_engine, normalise_url, sync_engine
from store.schema import leases
from store.sqlite_inline import inline_creator
from store.tables import metadata
from tests.builders import T0


def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return url


def aiosqlite_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def count(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(select(func.count()).select_from(leases))).scalar_one())


async def test_statements_run_without_a_driver_thread(tmp_path: Path) -> None:
    engine = async_engine(database(tmp_path))
    try:
        async with engine.begin() as conn:
            await conn.execute(leases.insert().values(name="a", holder="h", token=1, expires_at=T0))
            await conn.execute(
                leases.insert(), [{"name": n, "holder": "h", "token": 1, "expires_at": T0} for n in "bc"]
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(select(leases.c.name).order_by(leases.c.name))).scalars().all()
            assert rows == ["a", "b", "c"]
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            assert mode == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 0
        assert aiosqlite_threads() == []
    finally:
        await engine.dispose()


async def test_a_rolled_back_transaction_leaves_nothing(tmp_path: Path) -> None:
    engine = async_engine(database(tmp_path))
    try:

        async def insert_then_fail() -> None:
            async with engine.begin() as conn:
                await conn.execute(leases.insert().values(name="a", holder="h", token=1, expires_at=T0))
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            await insert_then_fail()
        assert await count(engine) == 0
    finally:
        await engine.dispose()


async def test_waiting_for_another_process_lock_keeps_the_loop_running(tmp_path: Path) -> None:
    url = database(tmp_path)
    engine = async_engine(url)
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO leases (name, holder, token, expires_at) VALUES ('x', 'o', 1, 0)")
        waiting = asyncio.create_task(count(engine))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not waiting.done()
        assert ticks == 20  # the loop kept running while the task waited for the lock
        other.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 5) == 1
    finally:
        other.close()
        await engine.dispose()


async def begin_immediately(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


async def test_the_wait_for_a_lock_ends_with_database_is_locked(tmp_path: Path) -> None:
    url = database(tmp_path)
    engine = create_async_engine(
        normalise_url(url, asynchronous=True),
        async_creator=inline_creator(normalise_url(url, asynchronous=True), busy_wait=0.2),
    )
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = asyncio.get_running_loop().time()
        with pytest.raises(OperationalError, match="database is locked"):
            await begin_immediately(engine)
        waited = asyncio.get_running_loop().time() - started
        assert 0.2 <= waited < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
        await engine.dispose()


async def test_other_errors_are_raised_at_once(tmp_path: Path) -> None:
    engine = async_engine(database(tmp_path))
    try:
        async with engine.connect() as conn:
            with pytest.raises(OperationalError, match="no such table"):
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
