"""Statements of the worker's hot path, compiled once and run through the driver.

SQLAlchemy's execution of a Core statement runs each bound value through its column type's
bind processor, each parameter set through the compiled statement's parameter construction,
and each result value through a result processor. For the worker's batches that was about a
quarter of a fresh alert's cost, more than SQLite took to store the rows, and most of a repeat's
(its brief row's three timestamps). Here a statement is compiled by SQLAlchemy once per dialect
(the same SQL, with PostgreSQL's casts) and executed with
:meth:`~sqlalchemy.ext.asyncio.AsyncConnection.exec_driver_sql`, its values already in the form
the column types would have given the driver (:class:`Values`): a UTC time as SQLite's
``DATETIME`` text (``YYYY-MM-DD HH:MM:SS.ffffff``, so comparisons in SQL and SQLAlchemy's own
reads see what :class:`store.schema.UTCDateTime` writes) or an aware ``datetime`` for psycopg,
a JSON column's value as JSON text. tests/unit/test_driver_sql.py holds both back ends' rows
to what SQLAlchemy writes and reads.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from store.key_lists import PerDialect

__all__ = [
    "DriverStatement",
    "Values",
    "in_list",
    "insert_ignoring",
    "inserting",
    "selecting",
    "selecting_among",
    "upsert",
    "values_for",
]

_UTC_OFFSET = timedelta(0)


def _naive() -> StatementError:
    """What :class:`store.schema.UTCDateTime` raises for a naive time, through SQLAlchemy: a
    ``StatementError`` the database never saw, so the worker quarantines the record instead of
    retrying it (streams/failures.py)."""
    problem = ValueError("naive datetime given to a UTC column")
    return StatementError(str(problem), None, None, problem)


#: Times given to SQLite lately, by value: an alert's receipt is also its event's time and its
#: state's last receipt, and an incident's opening is written again with each change. A batch's
#: worth (500 records, a few times each); cleared when full, so a storm of distinct times keeps
#: no more than that (about a megabyte).
_TEXTS: dict[datetime, str] = {}
_TEXTS_MAX = 4_096


def _sqlite_time(value: datetime | None) -> str | None:
    """What SQLAlchemy's SQLite ``DATETIME`` writes for ``UTCDateTime``: naive UTC, always with
    microseconds."""
    if value is None:
        return None
    text = _TEXTS.get(value)
    if text is not None:
        return text
    if value.tzinfo is None:
        raise _naive()
    utc = value if value.utcoffset() == _UTC_OFFSET else value.astimezone(UTC)
    text = utc.isoformat(" ")[:-6]  # (without its "+00:00")
    if not utc.microsecond:
        text += ".000000"
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    _TEXTS[value] = text
    return text


def _sqlite_read_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _aware_time(value: datetime | None) -> datetime | None:
    """psycopg sends an aware ``datetime`` as ``timestamptz`` (the instant is kept)."""
    if value is not None and value.tzinfo is None:
        raise _naive()
    return value


def _read_aware_time(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _json_text(value: object) -> str:
    """A JSON column's value as text: SQLite stores it, PostgreSQL casts it (``::JSON``)."""
    return to_json(value).decode()


@dataclass(frozen=True)
class Values:
    """How a value of each kind is given to one dialect's driver, and read back from it."""

    time: Callable[[datetime | None], Any]
    json: Callable[[object], str]
    #: A time column's value (not NULL) read back as an aware UTC ``datetime``.
    read_time: Callable[[Any], datetime]


_VALUES = {
    "sqlite": Values(_sqlite_time, _json_text, _sqlite_read_time),
    "postgresql": Values(_aware_time, _json_text, _read_aware_time),
}


def values_for(conn: AsyncConnection) -> Values:
    """The value forms of ``conn``'s dialect."""
    return _VALUES[conn.dialect.name]


@dataclass(frozen=True)
class DriverStatement:
    """A statement compiled for one dialect: its SQL and the order of its parameters (None:
    named parameters, given as mappings)."""

    sql: str
    order: tuple[str, ...] | None

    def __post_init__(self) -> None:
        # A mapping's values in the statement's order, as one tuple, in C (a row's columns are
        # many: picking them one by one in Python cost as much as SQLite's insert of the row).
        if self.order is None:
            picker: Callable[[Mapping[str, Any]], Any] = _named
        elif len(self.order) == 1:
            single = itemgetter(self.order[0])
            picker = lambda row: (single(row),)  # noqa: E731 (itemgetter of one gives no tuple)
        else:
            picker = itemgetter(*self.order)
        object.__setattr__(self, "_pick", picker)

    def _parameters(self, row: Mapping[str, Any]) -> Any:
        return self._pick(row)  # type: ignore[attr-defined]

    async def run(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute the statement once per row (one ``executemany``)."""
        if rows:
            pick = self._pick  # type: ignore[attr-defined]
            await conn.exec_driver_sql(self.sql, [pick(r) for r in rows])

    async def rows(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> list[Any]:
        """Execute the statement once; its rows, as the driver returns them."""
        result = await conn.exec_driver_sql(self.sql, self._parameters(parameters))
        return list(result.all())


def _named(row: Mapping[str, Any]) -> Mapping[str, Any]:
    return row


def _statement(compiled: Any) -> DriverStatement:
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    return DriverStatement(compiled.string, order)


_COMPILED: dict[tuple[Any, ...], DriverStatement] = {}


def _write(
    kind: str, conn: AsyncConnection, table: Table, key: str, columns: Sequence[str]
) -> DriverStatement:
    dialect = conn.dialect
    cache_key = (kind, dialect.name, table.name, tuple(columns))
    known = _COMPILED.get(cache_key)
    if known is not None:
        return known
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    if kind == "upsert":
        stmt = stmt.on_conflict_do_update(
            index_elements=[key], set_={c: stmt.excluded[c] for c in columns if c != key}
        )
    elif kind == "ignore":
        stmt = stmt.on_conflict_do_nothing(index_elements=[key])
    # (for_executemany: no RETURNING of the generated key, which nobody reads)
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    statement = _COMPILED[cache_key] = _statement(compiled)
    return statement


def upsert(conn: AsyncConnection, table: Table, key: str, columns: Sequence[str]) -> DriverStatement:
    """``INSERT`` of ``columns`` that replaces every other column of the row with the same ``key``."""
    return _write("upsert", conn, table, key, columns)


def insert_ignoring(
    conn: AsyncConnection, table: Table, key: str, columns: Sequence[str]
) -> DriverStatement:
    """``INSERT`` of ``columns`` that leaves a row with the same ``key`` as it is."""
    return _write("ignore", conn, table, key, columns)


def inserting(conn: AsyncConnection, table: Table, columns: Sequence[str]) -> DriverStatement:
    """A plain ``INSERT`` of ``columns``: a row with a key already stored is refused
    (``IntegrityError``)."""
    return _write("insert", conn, table, "", columns)


def selecting(conn: AsyncConnection, query: Select[Any], name: str, count: int) -> DriverStatement:
    """``query`` with its expanding parameter ``name`` bound to ``count`` values, compiled once
    per dialect and count: its values are given as ``{name}_1`` … ``{name}_{count}``
    (:func:`in_list`). ``count`` is bounded by the callers' chunks (store/chunking.py)."""
    cache_key = ("select", conn.dialect.name, query, name, count)
    known = _COMPILED.get(cache_key)
    if known is not None:
        return known
    compiled = query.params({name: [""] * count}).compile(
        dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
    )
    statement = _COMPILED[cache_key] = _statement(compiled)
    return statement


def selecting_among(
    conn: AsyncConnection, query: PerDialect[Select[Any]], name: str, keys: Sequence[Any]
) -> tuple[DriverStatement, dict[str, Any]]:
    """``query`` over ``keys`` bound to ``name`` (built by :class:`store.key_lists.PerDialect`)
    and its parameters: on PostgreSQL one statement compiled once, the keys as an array; on
    SQLite :func:`selecting` for their count, with :func:`in_list`."""
    if conn.dialect.name != "postgresql":
        return selecting(conn, query(conn), name, len(keys)), in_list(name, keys)
    stmt = query(conn)
    cache_key = ("select-any", conn.dialect.name, stmt, name)
    known = _COMPILED.get(cache_key)
    if known is None:
        known = _COMPILED[cache_key] = _statement(stmt.compile(dialect=conn.dialect))
    return known, {name: list(keys)}


def in_list(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """The parameters of an expanding parameter rendered by :func:`selecting`."""
    return {f"{name}_{i}": value for i, value in enumerate(values, 1)}
