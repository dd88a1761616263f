"""The incident reads of ``sevflow incidents list|show`` through the database's own driver.

Why: a command that reads a page of incidents spent more of its run importing SQLAlchemy (its
engine, SQL compiler, ORM and asyncio extension) than reading (bench/README.md, the CLI). Here
the same statements as :meth:`store.incident_reads.IncidentReads.newest` and
:meth:`store.incidents.IncidentStore.get` / ``timeline`` are written out as SQL text and run on a
DB-API connection: the standard ``sqlite3`` for SQLite, psycopg for PostgreSQL (imported only
then). tests/unit/test_direct_reads.py holds them to the SQLAlchemy statements' answers on both
back ends.

The connection, and how a URL is read, are store/driver_connect.py's.

Errors: :class:`StoreReadError` carries the driver's exception as ``orig`` (as SQLAlchemy's
errors do), never the URL; :class:`UnsupportedStore` for a URL of no supported database (the
message of :class:`store.db.UnsupportedDatabaseError`).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from store.driver_connect import DriverConnection, DriverError, UnsupportedStore, driver_connection

__all__ = ["DirectReads", "StoreReadError", "UnsupportedStore", "direct_reads"]

#: The CLI's name for a failed read (the driver's exception is its ``orig``).
StoreReadError = DriverError


class DirectReads:
    """The statements, on one DB-API connection inside one read transaction."""

    def __init__(self, connection: DriverConnection) -> None:
        self._connection = connection

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        connection = self._connection
        try:
            cursor = connection.conn.cursor()
            try:
                cursor.execute(connection.sql(sql), tuple(params))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except connection.errors as exc:
            raise StoreReadError(exc) from None

    def _time(self, moment: datetime) -> Any:
        return self._connection.time(moment)

    def newest(
        self,
        *,
        limit: int,
        state: str | None = None,
        severity: str | None = None,
        team: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[str]:
        """:meth:`store.incident_reads.IncidentReads.newest`: the same rows in the same order."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("state", state), ("severity", severity), ("team", team)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("opened_at >= ?")
            params.append(self._time(since))
        if until is not None:
            where.append("opened_at < ?")
            params.append(self._time(until))
        if after is not None:
            opened_at, incident_id = after
            where.append("(opened_at < ? OR (opened_at = ? AND id < ?))")
            params += [self._time(opened_at), self._time(opened_at), incident_id]
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        # Only the fixed conditions above are joined in; every value is a bound parameter.
        sql = f"SELECT document FROM incidents{condition} ORDER BY opened_at DESC, id DESC LIMIT ?"  # noqa: S608
        return [row[0] for row in self._rows(sql, [*params, limit])]

    def incident(self, incident_id: str) -> str | None:
        """The document of the incident (:meth:`store.incidents.IncidentStore.get`), if any."""
        rows = self._rows("SELECT document FROM incidents WHERE id = ?", [incident_id])
        return rows[0][0] if rows else None

    def timeline(self, incident_id: str) -> list[str]:
        """The documents of the incident's events in sequence order (``IncidentStore.timeline``)."""
        sql = "SELECT document FROM incident_events WHERE incident_id = ? ORDER BY sequence"
        return [row[0] for row in self._rows(sql, [incident_id])]


@contextmanager
def direct_reads(url: str) -> Iterator[DirectReads]:
    """A :class:`DirectReads` on a new connection to ``url``, in a transaction that only reads
    (SQLite: a deferred one, which under WAL neither waits for writers nor blocks them), closed
    on leaving."""
    connection = driver_connection(url, read_only=True)
    try:
        if connection.sqlite:
            try:
                connection.conn.cursor().execute("BEGIN")
            except connection.errors as exc:
                raise StoreReadError(exc) from None
        yield DirectReads(connection)
    finally:
        connection.close()  # nothing was written: closing ends the transaction
