"""SQLite's write-ahead log copied into the database file by a thread, not by the roles' commits
(store/wal_checkpoints.py, ``async_engine(…, checkpoint_in_background=True)``)."""

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import async_engine
from store.wal_checkpoints import WalCheckpoints

ROW = b"x" * 4000  # about a page a row
ROWS = 400  # a log of about 1.6 MB, which SQLite's own checkpoints would have copied at 1,000 pages


def wait_for(check: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def a_log_left_uncopied(path: Path) -> sqlite3.Connection:
    """A WAL database whose writer never checkpoints, with ``ROWS`` pages in its log."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE blobs (data BLOB)")
    for _ in range(ROWS):
        writer.execute("INSERT INTO blobs VALUES (?)", (ROW,))
    return writer


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def test_the_thread_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = a_log_left_uncopied(path)
    try:
        assert path.stat().st_size < 100_000 < ROWS * len(ROW) <= wal_of(path).stat().st_size
        checkpoints = WalCheckpoints(str(path), lambda: sqlite3.connect(path), interval=0.01)
        checkpoints.start()
        assert checkpoints.running
        wait_for(lambda: path.stat().st_size >= ROWS * len(ROW))
        checkpoints.stop()
        assert not checkpoints.running
        assert writer.execute("SELECT count(*) FROM blobs").fetchone() == (ROWS,)
        # Everything was copied: a checkpoint now has nothing left to copy.
        busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, copied) == (0, frames)
    finally:
        writer.close()


def test_a_long_log_is_restarted_once_no_reader_uses_it(tmp_path: Path) -> None:
    """Past ``restart_pages`` the thread asks for a RESTART checkpoint, which waits (a bounded
    time) for the log's readers; once it succeeds the next commit rewinds the log."""
    path = tmp_path / "store.db"
    writer = a_log_left_uncopied(path)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM blobs").fetchone()  # reads the log's pages
        short = WalCheckpoints(str(path), lambda: sqlite3.connect(path), restart_pages=ROWS * 10)
        busy, frames, copied = short.checkpoint() or (None, 0, None)
        assert (busy, copied) == (0, frames)  # all copied, and no restart asked for
        assert frames > ROWS
        long = WalCheckpoints(str(path), lambda: sqlite3.connect(path), restart_pages=ROWS // 4)
        assert long.checkpoint() == (1, frames, frames)  # the reader holds the restart back
        reader.execute("COMMIT")
        assert long.checkpoint() == (0, frames, frames)
        writer.execute("INSERT INTO blobs VALUES (?)", (ROW,))
        _, frames, _ = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert frames < 10  # written from the log's start again
    finally:
        reader.close()
        writer.close()


def test_a_missing_database_is_never_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    checkpoints = WalCheckpoints(str(path), lambda: sqlite3.connect(path), interval=0.01)
    assert checkpoints.checkpoint() is None
    checkpoints.start()
    time.sleep(0.1)
    checkpoints.stop()
    assert not path.exists()


class _Refusing:
    """A connection whose checkpoints SQLite refuses with ``code``."""

    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message
        self.closed = 0

    def execute(self, sql: str) -> None:
        if "wal_checkpoint" not in sql:
            return
        exc = sqlite3.OperationalError(self.message)
        exc.sqlite_errorcode = self.code  # type: ignore[attr-defined]
        raise exc

    def close(self) -> None:
        self.closed += 1


def test_a_lasting_failure_is_logged_once_and_a_busy_lock_not_at_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.db"
    path.touch()
    for code, message, warnings, closed in (
        (sqlite3.SQLITE_IOERR, "disk I/O error", 1, 3),
        (sqlite3.SQLITE_BUSY, "database is locked", 0, 0),
    ):
        caplog.clear()
        connection = _Refusing(code, message)
        checkpoints = WalCheckpoints(str(path), lambda c=connection: c)  # type: ignore[misc]
        with caplog.at_level(logging.INFO, logger="store.wal_checkpoints"):
            for _ in range(3):
                checkpoints._once()
        logged = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(logged) == warnings
        assert all(message in r.getMessage() and "store.db" in r.getMessage() for r in logged)
        assert connection.closed == closed  # a new connection after a failure, not after a busy lock


async def autocheckpoint(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one())


async def test_an_engine_checkpointing_in_background_never_copies_the_log_in_a_commit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    plain = async_engine(url)
    assert await autocheckpoint(plain) == 1000  # SQLite's default: the CLI's engines
    await plain.dispose()

    engine = async_engine(url, checkpoint_in_background=True)
    try:
        assert await autocheckpoint(engine) == 0
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE blobs (data BLOB)"))
        for _ in range(ROWS):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO blobs VALUES (:data)"), {"data": ROW})
        wait_for(lambda: path.stat().st_size >= ROWS * len(ROW))  # copied by the thread
    finally:
        await engine.dispose()
    # Disposed: the thread has stopped, and the engine's next connections checkpoint as SQLite does.
    assert await autocheckpoint(engine) == 1000
    await engine.dispose()


async def test_a_uri_keeps_sqlite_s_own_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite parses a URI's file name and options itself: the engine does not guess the file,
    nor make a directory of the URI's text."""
    monkeypatch.chdir(tmp_path)
    engine = async_engine(
        f"sqlite:///file:{tmp_path / 'store.db'}?mode=rwc&uri=true", checkpoint_in_background=True
    )
    try:
        assert await autocheckpoint(engine) == 1000
    finally:
        await engine.dispose()
    made = await asyncio.to_thread(lambda: [p.name for p in tmp_path.iterdir()])
    assert [name for name in made if not name.startswith("store.db")] == []
