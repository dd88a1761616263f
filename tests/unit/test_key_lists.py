"""Statements over a batch's keys: ``= ANY(array)`` on PostgreSQL, ``IN (…)`` on SQLite, the same
rows from both, whatever the number of keys."""

from typing import Any

from sqlalchemy import insert

from store.db import sync_engine
from store.incident_statements import KNOWN_GROUPS
from store.schema import incident_groups
from store.tables import metadata


def test_the_same_groups_are_found_for_any_number_of_keys(database_url: str) -> None:
    engine = sync_engine(database_url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        stored = [f"group-{i:04d}" for i in range(0, 1200, 2)]
        with engine.begin() as conn:
            conn.execute(
                insert(incident_groups), [{"group_key": g, "incident_id": None} for g in stored]
            )
            statement: Any = KNOWN_GROUPS(conn)  # type: ignore[arg-type]
            sql = str(statement.compile(dialect=conn.dialect))
            for keys in ([], ["group-0000"], ["nope"], [f"group-{i:04d}" for i in range(500)]):
                found = set(conn.execute(statement, {"keys": keys}).scalars())
                assert found == set(keys) & set(stored)
    finally:
        metadata.drop_all(engine)
        engine.dispose()
    if database_url.startswith("postgresql"):
        assert "= ANY (" in sql or "= ANY(" in sql, sql
    else:
        assert " IN (" in sql, sql
