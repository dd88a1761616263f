"""The async engine's SQLite log is checkpointed by a thread of its own, not by commits on the
loop's thread (store/sqlite_checkpoint.py)."""

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from store.db import async_engine
from store.sqlite_checkpoint import AUTOCHECKPOINT_PAGES, WalCheckpointer

ROW = "x" * 2000


def checkpoint_threads(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sqlite-checkpoint:{path.name}"]


def grown_to(path: Path, size: int, seconds: float = 5.0) -> bool:
    """Whether the database file reaches ``size`` bytes within ``seconds``."""
    deadline = time.monotonic() + seconds
    while path.stat().st_size < size and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.stat().st_size >= size


def wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only explicit checkpoints
    conn.execute("CREATE TABLE t (v TEXT)")
    return conn


def test_a_checkpoint_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = wal_database(path)
    writer.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * 500)
    size_before = path.stat().st_size

    reader = sqlite3.connect(path, isolation_level=None)
    busy, frames, copied = WalCheckpointer(path).checkpoint(reader)

    assert (busy, copied) == (0, frames)
    assert frames > 200
    assert path.stat().st_size > size_before + 500 * len(ROW) // 2
    writer.close()
    reader.close()


def test_the_thread_checkpoints_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = wal_database(path)
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    try:
        writer.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * 500)
        assert grown_to(path, 500 * len(ROW))
    finally:
        checkpointer.stop()
    assert not checkpointer.running
    done = checkpointer.checkpoints
    time.sleep(0.05)
    assert checkpointer.checkpoints == done
    writer.close()


def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    try:
        time.sleep(0.05)
        assert checkpointer.running
        assert checkpointer.checkpoints == 0
        wal_database(path).close()
        deadline = time.monotonic() + 5
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints > 0
    finally:
        checkpointer.stop()


async def test_the_engine_leaves_checkpoints_to_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = async_engine(f"sqlite:///{path}")
    try:
        assert len(checkpoint_threads(path)) == 1
        async with engine.begin() as conn:
            limit = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
            await conn.execute(text("CREATE TABLE t (v TEXT)"))
        assert limit == AUTOCHECKPOINT_PAGES
        size_before = path.stat().st_size
        # Far fewer pages than the commits' own limit: only the thread copies them.
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:v)"), [{"v": ROW}] * 1000)
        assert await asyncio.to_thread(grown_to, path, size_before + 1000 * len(ROW))
    finally:
        await engine.dispose()
    assert checkpoint_threads(path) == []


async def test_an_in_memory_engine_has_no_checkpointer() -> None:
    before = {t.name for t in threading.enumerate()}
    engine = async_engine("sqlite:///:memory:")
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        started = {t.name for t in threading.enumerate()} - before
        assert not [name for name in started if name.startswith("sqlite-checkpoint")]
    finally:
        await engine.dispose()
