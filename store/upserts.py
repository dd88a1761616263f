"""The dialect's INSERT, the one that has ON CONFLICT on both PostgreSQL and SQLite."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["dialect_insert"]


def dialect_insert(conn: AsyncConnection, table: Any) -> Any:
    """``INSERT INTO table`` in ``conn``'s dialect, with ``on_conflict_do_nothing`` / ``_update``."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
