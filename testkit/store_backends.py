"""A fixture that yields a fresh incident store on each supported back end.

SQLite runs everywhere (a file in tmp_path); PostgreSQL is the real server of scripts/postgres.sh,
so its parameter carries the ``integration`` marker.
"""

import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import async_engine, sync_engine
from store.driver_outbox import DriverOutbox
from store.tables import metadata

#: Tries at dropping a throw-away database (one a second).
DROP_ATTEMPTS = 60

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
]


@contextmanager
def throwaway_database(server_url: str, prefix: str = "sevflow_t") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url`` (whose role may create
    databases), dropped on exit: the database ``server_url`` names is never touched."""
    base = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            _drop(admin, name)
    finally:
        admin.dispose()


def _drop(admin: Engine, name: str, attempts: int = DROP_ATTEMPTS) -> None:
    """Drop database ``name``, trying again each second while the server refuses:
    ``DROP DATABASE … WITH (FORCE)`` cannot end another role's backend on it (autovacuum, which
    visits a database just filled) for a role without superuser rights, and that backend soon
    ends. A database still there after ``attempts`` is reported on stderr, not raised: what used
    it is done."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError:
            if attempt + 1 < attempts:
                time.sleep(1)
    print(f"warning: the throw-away database {name} could not be dropped", file=sys.stderr)


def fresh_database(url: str, *, create: bool = True) -> None:
    """Drop every table (and the migration history) so each test starts empty; create the
    declared tables unless ``create`` is False (sevflow itself migrates the database then)."""
    engine = sync_engine(url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        if create:
            metadata.create_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    fresh_database(url)
    return url


@pytest.fixture(params=BACKENDS)
def empty_store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A store with no tables on each back end, for a sevflow process that migrates it itself."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    fresh_database(url, create=False)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def relay_outbox(database_url: str) -> AsyncIterator[Callable[..., DriverOutbox]]:
    """Makes the outbox relay's view of the test's store (``holder``, lease ``name``, ``ttl``),
    as the relay's process opens it; each is closed after the test."""
    made: list[DriverOutbox] = []

    def make(holder: str, name: str = "relay", ttl: timedelta = timedelta(seconds=15)) -> DriverOutbox:
        outbox = DriverOutbox(database_url, name, holder, ttl)
        made.append(outbox)
        return outbox

    yield make
    for outbox in made:
        await outbox.close()
