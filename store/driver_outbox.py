"""The outbox relay's lease and outbox statements through the database's own driver.

Why: the relay's process (streams/relay_process.py) runs five statements: its lease taken,
renewed and given up, the unpublished events read, and their mark. Run through SQLAlchemy's
asyncio engine, the process imported SQLAlchemy's engine, compiler, ORM and asyncio extension
and sevflow's settings and models for them: 62 MB resident before its first event, most of the
relay's part of the worker-and-relay memory target (issue #17, bench/README.md). Written out as
SQL text on one DB-API connection (store/driver_connect.py: ``sqlite3``, or psycopg imported
only for PostgreSQL) the process needs none of that.

The statements are those of :class:`store.leases.Lease` (the same rows of ``leases``: a relay
and the worker's timers agree on who holds what) and of the outbox's ``incident_events`` rows
the worker writes; tests/unit/test_driver_outbox.py holds them to :class:`store.leases.Lease`
on both back ends. Each call is one transaction on a thread of its own, so a wait for SQLite's
write lock (a worker's batch holds it) never holds the relay's event loop, which carries the
producer's sends. A failed call closes the connection; the next call opens a new one.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from store.driver_connect import DriverConnection, DriverError, driver_connection
from store.lease_terms import next_token, renewal_due

__all__ = ["DriverOutbox", "OutboxRow"]

T = TypeVar("T")

_INSERT_MISSING = (
    "INSERT INTO leases (name, holder, token, expires_at) VALUES (?, '', 0, ?) "
    "ON CONFLICT (name) DO NOTHING"
)
_CURRENT = "SELECT holder, token FROM leases WHERE name = ?"
#: Taken when free, expired or already ours: one conditional UPDATE, so two relays racing for the
#: lease cannot both win.
_TAKE = (
    "UPDATE leases SET holder = ?, token = ?, expires_at = ? "
    "WHERE name = ? AND (holder = ? OR holder = '' OR expires_at < ?)"
)
_GIVE_UP = "UPDATE leases SET holder = '' WHERE name = ? AND holder = ?"
_UNPUBLISHED = (
    "SELECT position, event_id, incident_id, document FROM incident_events "
    "WHERE published_at IS NULL ORDER BY position LIMIT ?"
)
#: The fence: nothing is marked unless the lease is still held with the token it was taken with.
_MARK = (
    "UPDATE incident_events SET published_at = ? WHERE position IN ({positions}) AND EXISTS "
    "(SELECT 1 FROM leases WHERE name = ? AND holder = ? AND token = ?)"
)
#: Positions marked per statement (SQLite's bound-parameter limit is 32,766; a batch is 500).
_MARK_CHUNK = 500


class OutboxRow(NamedTuple):
    """An unpublished event: its place in storage order, id, incident and JSON document."""

    position: int
    event_id: str
    incident_id: str
    document: str


class DriverOutbox:
    """The outbox of the database at ``url`` and the lease ``name`` held by ``holder`` for
    ``ttl`` at a time; :attr:`token` is the lease's token while held (None otherwise)."""

    def __init__(self, url: str, name: str, holder: str, ttl: timedelta) -> None:
        self._url = url
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.token: int | None = None
        self._expires_at: datetime | None = None
        self._connection: DriverConnection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

    async def _call(self, work: Callable[[DriverConnection, Any], T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work, write)

    def _transaction(self, work: Callable[[DriverConnection, Any], T], write: bool) -> T:
        """``work`` in one transaction (SQLite: ``BEGIN IMMEDIATE`` to write, so the write lock
        is held from the first statement, as store/db.py's engines do)."""
        if self._connection is None:
            self._connection = driver_connection(self._url)
        connection = self._connection
        try:
            cursor = connection.conn.cursor()
            try:
                if connection.sqlite:
                    cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                result = work(connection, cursor)
            finally:
                cursor.close()
            connection.conn.commit()
            return result
        except connection.errors as exc:
            self._discard()
            raise DriverError(exc) from None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Close the connection (its transaction, if any, is rolled back); the next call opens
        another, so a server restarted or a dropped connection costs one failed call."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(*connection.errors):
                connection.close()

    async def acquire(self, now: datetime) -> bool:
        """Take or renew the lease when due (:func:`store.lease_terms.renewal_due`); True while
        this holder has it. Sets :attr:`token`."""
        if not renewal_due(self.token, self._expires_at, self.ttl, now):
            return True
        name, holder, expires_at = self.name, self.holder, now + self.ttl

        def take(connection: DriverConnection, cursor: Any) -> int | None:
            sql, at = connection.sql, connection.time(now)
            cursor.execute(sql(_INSERT_MISSING), (name, at))
            cursor.execute(sql(_CURRENT), (name,))
            current_holder, current_token = cursor.fetchone()
            token = next_token(holder, current_holder, int(current_token))
            until = connection.time(expires_at)
            cursor.execute(sql(_TAKE), (holder, token, until, name, holder, at))
            return token if cursor.rowcount == 1 else None

        token = await self._call(take, write=True)
        self.token = token
        self._expires_at = expires_at if token is not None else None
        return token is not None

    async def release(self) -> None:
        """Give the lease up, when held (on clean shutdown), so another worker takes over at
        once."""
        if self.token is None:
            return
        name, holder = self.name, self.holder

        def give_up(connection: DriverConnection, cursor: Any) -> None:
            cursor.execute(connection.sql(_GIVE_UP), (name, holder))

        await self._call(give_up, write=True)
        self.token = None
        self._expires_at = None

    async def unpublished(self, limit: int) -> list[OutboxRow]:
        """The first ``limit`` unpublished events in storage order (``position``), so each
        incident's events keep their sequence order. A transaction that only reads."""

        def read(connection: DriverConnection, cursor: Any) -> list[OutboxRow]:
            cursor.execute(connection.sql(_UNPUBLISHED), (limit,))
            return [OutboxRow(*row) for row in cursor.fetchall()]

        return await self._call(read, write=False)

    async def mark_published(self, positions: Sequence[int], now: datetime) -> None:
        """Mark the events at ``positions`` published at ``now``, only while the lease is
        still held with the token it was acquired with (the fence: a relay that lost its lease,
        and whose successor may already have re-read the events, changes nothing)."""
        fence = (self.name, self.holder, self.token)

        def mark(connection: DriverConnection, cursor: Any) -> None:
            at = connection.time(now)
            for start in range(0, len(positions), _MARK_CHUNK):
                chunk = list(positions[start : start + _MARK_CHUNK])
                sql = _MARK.format(positions=", ".join("?" * len(chunk)))
                cursor.execute(connection.sql(sql), (at, *chunk, *fence))

        if positions:
            await self._call(mark, write=True)

    async def close(self) -> None:
        """Close the connection and the statements' thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._discard)
        self._thread.shutdown(wait=True)
