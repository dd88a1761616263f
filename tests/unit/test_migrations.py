"""The Alembic migrations create exactly the tables the code declares, on both back ends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import sync_engine
from store.migrate import upgrade
from store.tables import metadata


def test_migrations_match_the_declared_schema(database_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = sync_engine(database_url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade(engine)
        upgrade(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], (
        "store/schema.py changed without a migration: python -m store.migrate revision ..."
    )
    assert {"incidents", "incident_events", "alerts", "incident_groups", "alembic_version"} <= tables
