"""aiosqlite connections that run each SQLite call on the event loop's own thread.

Why: aiosqlite runs every call (cursor, execute, fetch, close, commit…) on a thread of its own and
wakes the event loop with the result. On the 2-core box such a hop costs about 160 µs of CPU,
far more than most statements on a WAL database take, and one worker transaction makes about
forty of them: a batch of one alert cost 10 ms of CPU, 3.5 ms inline. Statements on a local SQLite
file are short, so running them where they are awaited costs the loop less than handing them off.

The one call that could hold the loop is a wait for the write lock another process (the sinks,
a CLI command, a second worker) holds. These connections run with ``busy_timeout`` 0 and do that
waiting here, between attempts, with ``asyncio.sleep``: the loop keeps serving other work, and
the wait ends with the same "database is locked" error as the blocking driver after
:data:`BUSY_WAIT_SECONDS`. Retrying is sound because a statement SQLite refuses with SQLITE_BUSY
has changed nothing; sevflow starts every write transaction with ``BEGIN IMMEDIATE``, so that
statement is where the wait happens.

SQLAlchemy's aiosqlite dialect drives these connections unchanged (``async_creator``); they are
aiosqlite connections whose queue to the thread is replaced by a direct call. That leans on
aiosqlite's internals (``_tx``, ``_execute``), so the dependency is pinned to its 0.22 series and
tests/unit/test_sqlite_inline.py runs the engine through them.
"""

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

__all__ = [
    "BUSY_WAIT_SECONDS",
    "InlineConnection",
    "busy_error",
    "inline_creator",
    "sqlite_connector",
]

#: How long a call waits for another connection's write lock before failing (the blocking
#: driver's ``busy_timeout`` is the same).
BUSY_WAIT_SECONDS = 30.0
_FIRST_PAUSE = 0.001
#: The longest pause between attempts. The worker holds the write lock for one batch (about
#: 10-20 ms at 200 alerts/s); with pauses doubling up to 50 ms a sink waiting behind it
#: overslept by up to as much, and with 4 ms instead the webhook-to-page p50 of
#: bench/e2e_latency.py went from 119-124 ms to 113-114 ms in alternating runs (the CPU per alert
#: unchanged: a refused ``BEGIN IMMEDIATE`` costs microseconds).
_LONGEST_PAUSE = 0.004


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs each call as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite's thread does
            if future is None:
                raise
            if not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


def busy_error(exc: sqlite3.Error) -> bool:
    """SQLite refused for a lock another connection holds (SQLITE_BUSY): nothing was done."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection without its thread (see the module docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_wait: float) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]
        self._busy_wait = busy_wait

    def __await__(self) -> Generator[Any, None, "InlineConnection"]:
        # aiosqlite starts its thread here; this connection has none.
        return self._connect().__await__()  # type: ignore[return-value]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        pause = _FIRST_PAUSE
        deadline: float | None = None
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not busy_error(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._busy_wait
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, _LONGEST_PAUSE)


def sqlite_connector(url: URL) -> Callable[[], sqlite3.Connection]:
    """Opens autocommit connections to the SQLite database of ``url`` (file name and URI options
    read as the sqlite3 driver reads them), without a busy handler: callers wait themselves."""
    args, options = SQLiteDialect_pysqlite().create_connect_args(url.set(drivername="sqlite"))
    # Autocommit (sevflow issues BEGIN itself); no busy handler, the retry loop above waits; the
    # pool may close a connection from another thread, which SQLite's serialized mode allows.
    options = {**options, "isolation_level": None, "timeout": 0, "check_same_thread": False}
    connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def connector() -> sqlite3.Connection:
        return connect(*args, **options)

    return connector


def inline_creator(
    url: URL, busy_wait: float = BUSY_WAIT_SECONDS
) -> Callable[[], Awaitable[InlineConnection]]:
    """The ``async_creator`` for ``create_async_engine``: connections to the SQLite database of
    ``url``."""
    connector = sqlite_connector(url)

    async def create() -> InlineConnection:
        return await InlineConnection(connector, busy_wait)

    return create
