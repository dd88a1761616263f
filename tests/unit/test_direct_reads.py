"""store/direct_reads.py: the CLI's reads through the driver give what the SQLAlchemy statements
give, on SQLite and PostgreSQL, and read a URL as SQLAlchemy reads it."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.incidents import (
    IncidentFilter,
    find_incidents,
    load_incident,
    read_incident,
    read_incidents,
)
from models.events import IncidentState
from models.severity import Severity
from store.db import UnsupportedDatabaseError, async_engine, sync_engine
from store.direct_reads import StoreReadError, UnsupportedStore, direct_reads
from store.driver_connect import driver_target
from store.incident_reads import incident_reads
from testkit.store_backends import fresh_database
from tests.builders import T0
from tests.unit.test_analytics_scenario import build_scenario
from tests.unit.test_cli import run_cli

#: Filters that reach every condition of the statement: state, severity, team and the window.
CRITERIA = [
    IncidentFilter(),
    IncidentFilter(state=IncidentState.RESOLVED),
    IncidentFilter(severity=Severity.SEV3, state=IncidentState.RESOLVED),
    IncidentFilter(team="default"),
    IncidentFilter(team="nobody"),
    IncidentFilter(service="checkout"),
    IncidentFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)),
    IncidentFilter(since=T0 + timedelta(hours=2, microseconds=1)),
]


async def test_pages_and_incidents_are_the_sqlalchemy_reads(
    engine: AsyncEngine, database_url: str
) -> None:
    scenario = await build_scenario(engine)
    with direct_reads(database_url) as reads:
        for criteria in CRITERIA:
            cursor = None
            for _ in range(6):  # pages of two: the keyset condition on every page after the first
                want = await find_incidents(engine, criteria, limit=2, cursor=cursor)
                got = read_incidents(reads, criteria, limit=2, cursor=cursor)
                assert got == want, criteria
                cursor = want.next_cursor
                if cursor is None:
                    break
        for incident_id in [*scenario.ids.values(), "inc_missing"]:
            assert read_incident(reads, incident_id) == await load_incident(engine, incident_id)


async def test_the_keyset_position_splits_incidents_opened_at_the_same_instant(
    engine: AsyncEngine, database_url: str
) -> None:
    await build_scenario(engine)
    page = await find_incidents(engine, IncidentFilter(), limit=5)
    opened_at = page.incidents[2].opened_at  # a bound equal to a stored instant, to the microsecond
    async with incident_reads(engine) as sqlalchemy_reads:
        for after in [(opened_at, "inc_zzz"), (opened_at, page.incidents[2].id), (opened_at, "")]:
            want = await sqlalchemy_reads.newest(limit=10, after=after, since=opened_at)
            with direct_reads(database_url) as reads:
                assert reads.newest(limit=10, after=after, since=opened_at) == want


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://sev:p%40ss%3Aword@db.example:5433/incidents?sslmode=require",
        "postgres://sev@[::1]/incidents",
        "postgresql+psycopg://sev:secret@localhost/incidents",
        "postgresql://localhost",
    ],
)
def test_a_postgresql_url_names_what_sqlalchemy_s_dialect_connects_to(url: str) -> None:
    parsed = make_url(url)
    expected = parsed.translate_connect_args(username="user", database="dbname")
    expected.update(parsed.query)
    target = driver_target(url)
    assert target is not None
    assert target.backend == "postgresql"
    assert dict(target.postgres) == expected


def test_a_sqlite_url_names_sqlalchemy_s_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a b%20c.db'}"
    target = driver_target(url)
    assert target is not None
    assert target.sqlite_path == make_url(url).database


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///x.db?timeout=5",
        "postgresql://u@/db?host=a&host=b",
        "mysql://u:secret@db/x",
        "nonsense",
    ],
)
def test_urls_it_does_not_read_itself_go_to_sqlalchemy(url: str) -> None:
    assert driver_target(url) is None


async def test_sqlalchemy_opens_what_it_does_not_read_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    engine = async_engine(url)
    try:
        await build_scenario(engine)
        want = await find_incidents(engine, IncidentFilter(), limit=5)
    finally:
        await engine.dispose()
    with direct_reads(f"{url}?timeout=5") as reads:  # an option only SQLAlchemy reads
        assert read_incidents(reads, IncidentFilter(), limit=5) == want
    assert len(want.incidents) == 5


def test_errors_name_the_problem_never_the_url(tmp_path: Path) -> None:
    unsupported_url = "mysql://u:secret@db/x"
    with (
        pytest.raises(UnsupportedStore, match="unsupported database 'mysql'") as unsupported,
        direct_reads(unsupported_url),
    ):
        pass
    assert "secret" not in str(unsupported.value)
    empty = f"sqlite:///{tmp_path / 'new' / 'empty.db'}"
    with pytest.raises(StoreReadError, match="no such table: incidents"), direct_reads(empty) as reads:
        reads.newest(limit=1)


def test_a_sqlite_folder_that_cannot_be_made_is_named_by_every_way_in(tmp_path: Path) -> None:
    """A folder in the way of the SQLite file (here a file of the same name; on a host, a folder
    under /proc or without permission): a traceback of ``mkdir`` from every role and command."""
    (tmp_path / "taken").write_text("")
    url = f"sqlite:///{tmp_path / 'taken' / 'store' / 'sevflow.db'}"
    words = f"cannot create the SQLite store's folder {tmp_path / 'taken' / 'store'}: Not a directory"
    with pytest.raises(UnsupportedStore, match=words), direct_reads(url):
        pass
    with pytest.raises(UnsupportedDatabaseError, match=words):
        sync_engine(url)
    with pytest.raises(UnsupportedDatabaseError, match=words):
        async_engine(url)
    env = {
        **os.environ,
        "SEVFLOW_DATA_DIR": str(tmp_path / "data"),
        "SEVFLOW_DATABASE_URL": url,
        "SEVFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    for command in (["worker"], ["incidents", "list"]):
        refused = run_cli(*command, env=env)
        assert refused.returncode in (1, 2), refused.stderr
        assert words in refused.stderr
        assert "Traceback" not in refused.stderr
