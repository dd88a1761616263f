"""Database URLs and engines for the two supported back ends, PostgreSQL and SQLite.

Users write ordinary URLs (``postgresql://…``, ``sqlite:///file.db``); this module picks the drivers:
psycopg 3 for PostgreSQL (sync and async), the standard ``sqlite3`` for SQLite, driven through
SQLAlchemy's aiosqlite dialect on the event loop's own thread (store/sqlite_inline.py).
Schema changes run on a synchronous engine; the stream worker uses the async one.
"""

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from store.driver_connect import make_sqlite_folder
from store.sqlite_inline import inline_creator, sqlite_connector
from store.wal_checkpoints import WalCheckpoints

__all__ = ["UnsupportedDatabaseError", "async_engine", "normalise_url", "reader", "sync_engine"]

#: Execution option marking connections that only read (see :func:`reader`).
READ_ONLY = "sevflow_read_only"

#: SQLite connections an async engine keeps open once opened. A connection waiting for another
#: process's write lock (the worker's) stays checked out meanwhile, so a sinks process delivering
#: dozens of incidents at once holds dozens; SQLAlchemy's default pool (5, plus 10 overflow
#: connections closed on return) then opened and closed a connection, with its pragmas, for most
#: uses. Connections are opened only when needed, and an idle one costs a file handle.
SQLITE_POOL_SIZE = 64


class UnsupportedDatabaseError(ValueError):
    """The URL names a database sevflow does not support, or a SQLite file whose folder cannot
    be made."""


def normalise_url(url: str, *, asynchronous: bool) -> URL:
    """Return ``url`` with the driver sevflow uses for its back end."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise UnsupportedDatabaseError(f"not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    raise UnsupportedDatabaseError(
        f"unsupported database {backend!r}: use postgresql://… or sqlite:///…"
    )


def _prepare_sqlite_file(url: URL) -> None:
    """Create the SQLite file's directory. Not for a URI (``sqlite:///file:…?uri=true``): SQLite
    parses it itself, and its text is no path (it made a ``file:`` directory in the working
    directory)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or str(url.query.get("uri", "")).lower() in {"true", "1"}:
        return
    if (problem := make_sqlite_folder(Path(database).parent)) is not None:
        raise UnsupportedDatabaseError(problem)


def _sqlite_pragmas(
    engine: Engine, busy_timeout_ms: int = 30_000, *, checkpoints: WalCheckpoints | None = None
) -> None:
    """SQLite as a serious store: WAL so readers never block the writer, a busy timeout instead of
    spurious "database is locked" (0 for the async engine, whose connections wait for the lock
    without blocking the loop), and ``BEGIN IMMEDIATE`` so a read-modify-write transaction
    holds the write lock from its first statement (the equivalent of PostgreSQL's
    ``SELECT … FOR UPDATE``, which SQLite lacks). Connections of a :func:`reader` begin a plain
    (deferred) transaction instead: under WAL a reader sees a consistent snapshot without taking
    the write lock, so it neither waits for the writers nor makes them wait. While
    ``checkpoints`` runs, no commit copies the log into the database file: its thread does."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if checkpoints is not None and checkpoints.running:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def sync_engine(url: str) -> Engine:
    """A synchronous engine (schema management, CLI reads)."""
    normalised = normalise_url(url, asynchronous=False)
    _prepare_sqlite_file(normalised)
    engine = create_engine(normalised, pool_pre_ping=True)
    if normalised.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def async_engine(url: str, *, checkpoint_in_background: bool = False) -> AsyncEngine:
    """An asyncio engine (the roles, the CLI's writes). ``checkpoint_in_background``: for the
    roles that write all the time, on SQLite: their commits never copy the write-ahead log into
    the database file, a thread of the engine's does (store/wal_checkpoints.py), until the
    engine is disposed."""
    normalised = normalise_url(url, asynchronous=True)
    _prepare_sqlite_file(normalised)
    # A pre-ping is a round trip per checkout; an SQLite file connection never goes stale, so only
    # PostgreSQL's connections are pinged. Likewise the pool's rollback on return: SQLite runs in
    # autocommit mode (sevflow issues BEGIN itself) and a connection closed inside a transaction
    # rolls it back before returning. Its pool keeps what it opened (:data:`SQLITE_POOL_SIZE`).
    if normalised.get_backend_name() != "sqlite":
        return create_async_engine(normalised, pool_pre_ping=True)
    engine = create_async_engine(
        normalised,
        async_creator=inline_creator(normalised),
        pool_pre_ping=False,
        pool_reset_on_return=None,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=-1,  # never wait for a connection: beyond the pool, open one for the use
    )
    checkpoints = None
    if checkpoint_in_background and _plain_file(normalised):
        checkpoints = _checkpoint_in_background(engine.sync_engine, normalised)
    _sqlite_pragmas(engine.sync_engine, busy_timeout_ms=0, checkpoints=checkpoints)
    return engine


def _plain_file(url: URL) -> bool:
    """A database file named by its path (not in memory, not an ``uri=true`` URI, whose file
    name and options SQLite parses)."""
    database = url.database or ""
    return database not in ("", ":memory:") and "uri" not in url.query


def _checkpoint_in_background(engine: Engine, url: URL) -> WalCheckpoints:
    """Started now, stopped when the engine is disposed (its next connections then checkpoint
    as SQLite does by default)."""
    checkpoints = WalCheckpoints(str(Path(url.database or "").absolute()), sqlite_connector(url))
    checkpoints.start()

    @event.listens_for(engine, "engine_disposed")
    def _stop(_engine):  # type: ignore[no-untyped-def]
        checkpoints.stop()

    return checkpoints


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) for transactions that only read: on SQLite they do not take the
    write lock. Never write through it; on PostgreSQL it changes nothing."""
    return engine.execution_options(**{READ_ONLY: True})
