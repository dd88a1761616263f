"""The incident reads of ``sevflow incidents list|show`` through the database's own driver.

Why: a command that reads a page of incidents spent more of its run importing SQLAlchemy (its
engine, SQL compiler, ORM and asyncio extension) than reading (bench/README.md, the CLI). Here
the same statements as :meth:`store.incident_reads.IncidentReads.newest` and
:meth:`store.incidents.IncidentStore.get` / ``timeline`` are written out as SQL text and run on a
DB-API connection: the standard ``sqlite3`` for SQLite, psycopg for PostgreSQL (imported only
then). tests/unit/test_direct_reads.py holds them to the SQLAlchemy statements' answers on both
back ends.

URLs are read as SQLAlchemy reads them (``sqlite:///file``, ``postgresql://user:pw@host/db?…``).
One this module does not read itself (another back end, an SQLite URL with options, several
PostgreSQL hosts) is opened by SQLAlchemy's synchronous engine (:func:`store.db.sync_engine`,
whose errors name what is wrong with it) and its DB-API connection runs the same statements.

Errors: :class:`StoreReadError` carries the driver's exception as ``orig`` (as SQLAlchemy's
errors do), never the URL; :class:`UnsupportedStore` for a URL of no supported database (the
message of :class:`store.db.UnsupportedDatabaseError`).
"""

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["DirectReads", "StoreReadError", "UnsupportedStore", "direct_reads"]

#: SQLAlchemy's URL pattern (sqlalchemy/engine/url.py ``_parse_url``), so a URL names the same
#: database here as in the rest of sevflow.
_URL = re.compile(
    r"""
    (?P<name>[\w\+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/\?]+)\]|(?P<ipv4host>[^/:\?]+))?(?::(?P<port>[^/\?]*))?)?
    (?:/(?P<database>[^\?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.X,
)
#: How long a read waits for another connection's lock on SQLite (store/db.py's sync engine's).
_BUSY_TIMEOUT_SECONDS = 30.0


class UnsupportedStore(ValueError):
    """The URL names no database sevflow supports (store.db's message)."""


class StoreReadError(Exception):
    """The store could not be read; ``orig`` is the driver's exception."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.orig = orig


@dataclass(frozen=True)
class _Target:
    """A database this module connects to itself."""

    backend: str  # "sqlite" or "postgresql"
    sqlite_path: str | None = None
    postgres: tuple[tuple[str, Any], ...] = ()


def _target(url: str) -> _Target | None:
    """What ``url`` names, when it is a plain SQLite file or a single PostgreSQL server."""
    match = _URL.match(url)
    if match is None:
        return None
    parts = match.groupdict()
    backend = parts["name"].partition("+")[0]
    if backend == "sqlite":
        database = unquote(parts["database"] or "")
        plain = not (parts["query"] or parts["username"] or parts["ipv4host"] or parts["ipv6host"])
        if not plain or database in ("", ":memory:"):
            return None
        return _Target("sqlite", sqlite_path=database)
    if backend not in ("postgresql", "postgres"):
        return None
    params: dict[str, Any] = {}
    for name, key in (("username", "user"), ("password", "password"), ("database", "dbname")):
        if parts[name] is not None:
            params[key] = unquote(parts[name])
    if host := parts["ipv4host"] or parts["ipv6host"]:
        params["host"] = host
    if parts["port"]:
        if not parts["port"].isdigit():
            return None
        params["port"] = int(parts["port"])
    query = parse_qsl(parts["query"] or "")
    if len({k for k, _ in query}) != len(query) or {k for k, _ in query} & {"host", "port"}:
        return None  # several hosts: SQLAlchemy's dialect joins them
    params.update(query)
    return _Target("postgresql", postgres=tuple(params.items()))


def _sqlite_time(moment: datetime) -> str:
    """An instant as SQLAlchemy stores a UTC DateTime in SQLite (store.schema.UTCDateTime)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


class DirectReads:
    """The statements, on one DB-API connection inside one read transaction."""

    def __init__(self, conn: Any, backend: str, errors: tuple[type[BaseException], ...]) -> None:
        self._conn = conn
        self._sqlite = backend == "sqlite"
        self._errors = errors

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        try:
            cursor = self._conn.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except self._errors as exc:
            raise StoreReadError(exc) from None

    def _time(self, moment: datetime) -> Any:
        return _sqlite_time(moment) if self._sqlite else moment.astimezone(UTC)

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
    target = _target(url)
    if target is None:
        with _through_sqlalchemy(url) as reads:
            yield reads
        return
    conn: Any
    errors: tuple[type[BaseException], ...]
    if target.sqlite_path is not None:
        errors = (sqlite3.Error,)
        conn = _sqlite(target.sqlite_path)
    else:
        import psycopg  # only for PostgreSQL: it weighs as much as the command's own work

        errors = (psycopg.Error,)
        try:
            conn = psycopg.connect(**dict(target.postgres))
            conn.read_only = True
        except psycopg.Error as exc:
            raise StoreReadError(exc) from None
    try:
        yield DirectReads(conn, target.backend, errors)
    finally:
        conn.close()  # nothing was written: closing ends the transaction


def _sqlite(path: str) -> sqlite3.Connection:
    """A connection to the SQLite file (created empty, as SQLAlchemy's engine would, so a store
    without tables says so), in a deferred transaction."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreReadError(exc) from None
    try:
        conn.execute("BEGIN")
    except sqlite3.Error as exc:
        conn.close()
        raise StoreReadError(exc) from None
    return conn


@contextmanager
def _through_sqlalchemy(url: str) -> Iterator[DirectReads]:
    """The DB-API connection of SQLAlchemy's engine for a URL :func:`_target` does not read."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import UnsupportedDatabaseError, sync_engine

    try:
        engine = sync_engine(url)
    except UnsupportedDatabaseError as exc:
        raise UnsupportedStore(str(exc)) from None
    try:
        try:
            conn = engine.raw_connection()
        except SQLAlchemyError as exc:
            raise StoreReadError(getattr(exc, "orig", None) or exc) from None
        try:
            backend, errors = engine.dialect.name, (engine.dialect.loaded_dbapi.Error,)
            if backend == "sqlite":
                try:
                    conn.driver_connection.execute("BEGIN")  # type: ignore[union-attr]
                except errors as exc:
                    raise StoreReadError(exc) from None
            yield DirectReads(conn, backend, errors)
        finally:
            conn.close()
    finally:
        engine.dispose()
