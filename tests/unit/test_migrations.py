"""The Alembic migrations create exactly the tables the code declares, on both back ends."""

import os
from pathlib import Path
from unittest import mock

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import sync_engine
from store.migrate import upgrade
from store.schema_version import HEAD_REVISION, at_head
from store.tables import metadata
from testkit.store_backends import fresh_database


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


def test_roles_starting_together_on_a_fresh_database_both_migrate(database_url: str) -> None:  # type: ignore[no-untyped-def]
    """The worker and the sinks (and a second replica) each bring the schema up to date at start,
    in processes of their own; on a fresh database they do it at the same moment, and none may
    fail for it."""
    import subprocess
    import sys
    import time

    from testkit.local import REPO

    engine = sync_engine(database_url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        engine.dispose()
    at = time.time() + 3.0  # after every process has imported: they migrate together
    script = (
        "import sys, time\n"
        "from store.db import sync_engine\n"
        "from store.migrate import upgrade\n"
        "engine = sync_engine(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "upgrade(engine)\n"
    )
    roles = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url, str(at)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(role.wait(120), role.communicate()[1][-2000:]) for role in roles]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"incidents", "incident_events", "escalations", "sink_deliveries"} <= tables


def test_the_head_revision_constant_is_the_migrations_head(database_url: str) -> None:  # type: ignore[no-untyped-def]
    from alembic.script import ScriptDirectory

    from store.migrate import _config

    engine = sync_engine(database_url)
    try:
        assert ScriptDirectory.from_config(_config(engine)).get_current_head() == HEAD_REVISION
        fresh_database(database_url, create=False)
        assert not at_head(engine)  # no version table yet
        upgrade(engine)
        assert at_head(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0009'")
        assert not at_head(engine)  # an older store is migrated again
    finally:
        engine.dispose()


_STARTS = """
import sys
from models.settings import Settings
from sevflow.roles.startup import init_db
status = init_db(Settings(database_url=sys.argv[1]))
print(status, "alembic" in sys.modules)
"""


def test_a_role_loads_alembic_only_when_its_store_is_not_current(database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Alembic stays resident in a role's process once loaded (about 11 MB); a store already at
    the head revision (``sevflow run`` and the init-db job migrate before the roles start)
    needs none of it."""
    import subprocess
    import sys

    from testkit.local import REPO

    fresh_database(database_url, create=False)

    def start() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _STARTS, database_url],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert start() == "0 True"  # a fresh store: migrated
    assert start() == "0 False"  # current: Alembic never loaded


def test_a_store_migrated_by_a_newer_release_is_used_as_it_is(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling upgrade (or a rollback): a later release migrated the store, and this one has no
    migration of that name. Alembic's ``CommandError`` came out of every role as a traceback,
    so an old role restarted during the upgrade could not start; migrations only add, so it
    starts on the store as it is, saying so, and migrates nothing."""
    from models.settings import Settings
    from sevflow.roles.startup import init_db
    from store.migrate import NewerStore

    engine = sync_engine(database_url)
    try:
        fresh_database(database_url, create=False)
        upgrade(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_later'")
        with pytest.raises(NewerStore) as newer:
            upgrade(engine)
        env = {"SEVFLOW_DATABASE_URL": database_url, "SEVFLOW_DATA_DIR": str(tmp_path)}
        with mock.patch.dict(os.environ, env, clear=True):
            settings = Settings()
        assert init_db(settings) == 0
        with engine.connect() as conn:
            (version,) = conn.exec_driver_sql("SELECT version_num FROM alembic_version").one()
    finally:
        engine.dispose()
    assert version == "9999_later"  # (nothing migrated back)
    assert str(newer.value).startswith("Can't locate revision identified by '9999_later': ")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("migrated by another sevflow release" in w and "not migrated" in w for w in warned)
