"""Connections of the database's own driver, for the modules that run SQL text without SQLAlchemy.

Why: importing SQLAlchemy's engine, compiler, ORM and asyncio extension costs a process about
30 MB and a good part of a second. Two places run a handful of fixed statements and nothing else:
the CLI's incident reads (store/direct_reads.py) and the outbox relay's process
(store/driver_outbox.py). They open the standard ``sqlite3`` for SQLite and psycopg for
PostgreSQL (imported only then) through :func:`driver_connection`.

URLs are read as SQLAlchemy reads them (``sqlite:///file``, ``postgresql://user:pw@host/db?…``).
One this module does not read itself (another back end, an SQLite URL with options, several
PostgreSQL hosts) is opened by SQLAlchemy's synchronous engine (:func:`store.db.sync_engine`,
whose errors name what is wrong with it), and its DB-API connection runs the same statements.

Errors: :class:`DriverError` carries the driver's exception as ``orig`` (as SQLAlchemy's errors
do), never the URL; :class:`UnsupportedStore` for a URL of no supported database (the message of
:class:`store.db.UnsupportedDatabaseError`).
"""

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "DriverConnection",
    "DriverError",
    "DriverTarget",
    "UnsupportedStore",
    "driver_connection",
    "driver_target",
    "make_sqlite_folder",
    "sqlite_time",
]

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
#: How long a statement waits for another connection's lock on SQLite (store/db.py's sync
#: engine's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0


class UnsupportedStore(ValueError):
    """The URL names no database sevflow supports (store.db's message), or a SQLite file whose
    folder cannot be made."""


def make_sqlite_folder(folder: Path) -> str | None:
    """Create the folder of a SQLite file (and its parents); why it cannot be, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # (a folder under /proc, a file in the way, no permission)
        return (
            f"cannot create the SQLite store's folder {folder}: {exc.strerror or exc} "
            "(set SEVFLOW_DATA_DIR, or the path in SEVFLOW_DATABASE_URL, to a writable place)"
        )
    return None


class DriverError(Exception):
    """A statement or connection failed; ``orig`` is the driver's exception."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.orig = orig


@dataclass(frozen=True)
class DriverTarget:
    """A database this module connects to itself."""

    backend: str  # "sqlite" or "postgresql"
    sqlite_path: str | None = None
    postgres: tuple[tuple[str, Any], ...] = ()


def driver_target(url: str) -> DriverTarget | None:
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
        return DriverTarget("sqlite", sqlite_path=database)
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
    return DriverTarget("postgresql", postgres=tuple(params.items()))


def sqlite_time(moment: datetime) -> str:
    """An instant as SQLAlchemy stores a UTC DateTime in SQLite (store.schema.UTCDateTime)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class DriverConnection:
    """An open DB-API connection and what running statements on it needs to know.

    SQLite connections run in autocommit mode: a transaction is begun with an explicit ``BEGIN``
    (``BEGIN IMMEDIATE`` to write, as store/db.py's engines do). psycopg's begin one on the first
    statement. :meth:`sql` turns the ``?`` placeholders the statements are written with into the
    driver's own."""

    conn: Any
    backend: str
    errors: tuple[type[BaseException], ...]
    _close: Callable[[], None]

    @property
    def sqlite(self) -> bool:
        return self.backend == "sqlite"

    def sql(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def time(self, moment: datetime) -> Any:
        """``moment`` as a ``UTCDateTime`` column takes it through this driver."""
        return sqlite_time(moment) if self.sqlite else moment.astimezone(UTC)

    def close(self) -> None:
        self._close()


def driver_connection(url: str, *, read_only: bool = False) -> DriverConnection:
    """A new connection to ``url``. ``read_only``: a PostgreSQL session that refuses writes (an
    SQLite connection is never asked to write by a reader)."""
    target = driver_target(url)
    if target is None:
        return _through_sqlalchemy(url)
    if target.sqlite_path is not None:
        conn = _sqlite(target.sqlite_path, set_up=not read_only)
        return DriverConnection(conn, "sqlite", (sqlite3.Error,), conn.close)
    import psycopg  # only for PostgreSQL: it weighs as much as a command's own work

    try:
        pg = psycopg.connect(**dict(target.postgres))
        if read_only:
            pg.read_only = True
    except psycopg.Error as exc:
        raise DriverError(exc) from None
    return DriverConnection(pg, "postgresql", (psycopg.Error,), pg.close)


def _sqlite(path: str, *, set_up: bool) -> sqlite3.Connection:
    """A connection to the SQLite file, created empty as SQLAlchemy's engine would (so a store
    without tables says so); ``set_up``: as store/db.py sets up a connection that writes (a
    reader changes nothing, not even the journal mode of a file it may not write)."""
    if (problem := make_sqlite_folder(Path(path).parent)) is not None:
        raise UnsupportedStore(problem)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise DriverError(exc) from None
    if not set_up:
        return conn
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise DriverError(exc) from None
    return conn


def _through_sqlalchemy(url: str) -> DriverConnection:
    """The DB-API connection of SQLAlchemy's engine for a URL :func:`driver_target` does not
    read (the engine's connect hook sets SQLite up the same way)."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import UnsupportedDatabaseError, sync_engine

    try:
        engine = sync_engine(url)
    except UnsupportedDatabaseError as exc:
        raise UnsupportedStore(str(exc)) from None
    try:
        conn = engine.raw_connection()
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DriverError(getattr(exc, "orig", None) or exc) from None

    def close() -> None:
        try:
            conn.close()
        finally:
            engine.dispose()

    return DriverConnection(conn, engine.dialect.name, (engine.dialect.loaded_dbapi.Error,), close)
