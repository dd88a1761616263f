"""Statements over a batch's keys, in the form each back end runs best.

SQLite: ``column IN (?, ?, …)``, one placeholder per key (an expanding parameter, rendered for
each execution). PostgreSQL: ``column = ANY(%(keys)s)``, the keys bound as one array. Its text
is the same whatever the number of keys, so SQLAlchemy renders nothing per execution and psycopg
converts the statement once and prepares it; with expanding parameters, rendering the lists and
converting each new text cost about 5 % of the worker's CPU on PostgreSQL (py-spy of the worker,
500 keys a batch). Both forms take the keys as one list under the parameter's name.
"""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Among", "PerDialect"]

S = TypeVar("S")

#: ``among(column, name)``: the condition "``column`` is one of the keys bound to ``name``".
Among = Callable[[ColumnElement[Any], str], ColumnElement[bool]]


def _in_list(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))


def _any_of_array(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))


class PerDialect(Generic[S]):
    """A statement built twice by ``build(among)``: with ``= ANY(array)`` for PostgreSQL and with
    an ``IN`` list for SQLite; called with a connection, the one for its dialect."""

    def __init__(self, build: Callable[[Among], S]) -> None:
        self._postgresql = build(_any_of_array)
        self._other = build(_in_list)

    def __call__(self, conn: AsyncConnection) -> S:
        return self._postgresql if conn.dialect.name == "postgresql" else self._other
