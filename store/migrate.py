"""Schema migrations (Alembic), run by ``sevflow init-db`` and at worker start.

The migration scripts live in ``store/migrations/versions``; a new one is written with
``python -m store.migrate revision "message"`` after a change to store/schema.py (or a module that
adds tables to its metadata) and reviewed like code.
"""

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

import store.tables  # noqa: F401  (every table the migrations describe)
from store.db import sync_engine
from store.schema import metadata
from store.sinks_schema import sink_deliveries, sink_refs, status_page_incidents

__all__ = ["NewerStore", "create_missing_sink_tables", "upgrade"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
#: PostgreSQL advisory lock key that serialises migrations ("sevflow" in ASCII, as an int).
_MIGRATION_LOCK = 0x736576666C6F77


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("path_separator", "os")
    config.attributes["engine"] = engine
    return config


class NewerStore(SQLAlchemyError):
    """The store names a revision this release has no migration for: a later release migrated
    it (a rolling upgrade under way, or a rollback), or another program's Alembic shares the
    table. Migrations only expand (README "Upgrades"), so the roles start on it without
    migrating, saying so; nothing is migrated back."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema to ``revision`` (idempotent).

    Every role migrates at start, so on a fresh PostgreSQL database the worker, the sinks and any
    replica do it at once: their CREATE TABLEs collided and all but one failed. A transaction-level
    advisory lock makes them take turns; the later ones find the schema current. (SQLite's own
    write lock already serialises them.)"""
    config = _config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise NewerStore(
                f"{exc}: the store was migrated by another sevflow release, most likely a newer one"
            ) from None


def create_missing_sink_tables(engine: Engine) -> None:
    """Create any sink table no migration has created yet, after :func:`upgrade` (``checkfirst``:
    a no-op once the sinks' migration exists)."""
    metadata.create_all(engine, tables=[sink_deliveries, sink_refs, status_page_incidents])


def _revision(url: str, message: str) -> None:
    engine = sync_engine(url)
    upgrade(engine)
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":  # python -m store.migrate revision "message" [sqlite-url]
    if len(sys.argv) < 3 or sys.argv[1] != "revision":
        raise SystemExit('usage: python -m store.migrate revision "message" [database-url]')
    _revision(sys.argv[3] if len(sys.argv) > 3 else "sqlite:///:memory:", sys.argv[2])
