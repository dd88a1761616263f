"""The quiet-period timer and the maintenance windows' release go on past one incident or window
the database refuses for good.

Each ran its incidents (a page of up to 100 quiet ones) or its due windows one transaction at a
time, and a permanent error at one ended the run: the incidents after it in its page were not
resolved, the windows after it not released, at every run while it failed. A trigger on the real
PostgreSQL server refuses one incident's or one alert's rows with ``22001`` (a string too long
for its column), as such a value would.
"""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import EventType
from models.incident import LifecyclePolicy
from models.maintenance import MaintenanceWindow
from store.db import async_engine
from store.incidents import IncidentStore
from store.maintenance import MaintenanceStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.builders import T0, alert

pytestmark = pytest.mark.integration

QUIET = timedelta(minutes=5)


async def refuse(engine: AsyncEngine, table: str, column: str, value: str) -> None:
    """Make PostgreSQL refuse every insert or update of ``table`` whose ``column`` is ``value``."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.{column} = '{value}' THEN RAISE EXCEPTION "
                "'value too long for type character varying(64)' USING ERRCODE = '22001'; "
                "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER refuse_row BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_row()"
            )
        )


async def allow(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_row ON {table}"))
        await conn.execute(text("DROP FUNCTION IF EXISTS refuse_row()"))


@pytest.fixture
async def engine(postgres_url: str):  # type: ignore[no-untyped-def]
    fresh_database(postgres_url)
    engine = async_engine(postgres_url)
    yield engine
    async with engine.begin() as conn:
        for table in ("incidents", "alerts"):
            await conn.execute(text(f"DROP TRIGGER IF EXISTS refuse_row ON {table}"))
        await conn.execute(text("DROP FUNCTION IF EXISTS refuse_row()"))
    await engine.dispose()


async def test_one_refused_incident_does_not_keep_the_others_open(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy(quiet_period=QUIET))
    ids = []
    for name in ("ApiDown", "DbDown", "QueueDown"):
        (opened,) = await pipeline.process_alerts([alert(name, service=name.lower())])
        ids.append(opened.incident_id)
        resolved = alert(name, service=name.lower(), status="resolved", at=T0 + timedelta(minutes=1))
        await pipeline.process_alerts([resolved])
    refused = sorted(ids)[0]  # the quiet scan goes by id: the first of its page
    await refuse(engine, "incidents", "id", refused)
    with caplog.at_level(logging.ERROR, logger="streams.failures"):
        events = await pipeline.expire_quiet(T0 + timedelta(minutes=7))
    assert {e.incident_id for e in events if e.type is EventType.RESOLVED} == set(ids) - {refused}
    (line,) = [r.getMessage() for r in caplog.records if refused in r.getMessage()]
    assert f"the quiet period of incident {refused} cannot be applied (DataError [22001]" in line
    # Once the database takes it again, the next run resolves it.
    await allow(engine, "incidents")
    again = await pipeline.expire_quiet(T0 + timedelta(minutes=8))
    assert [(e.incident_id, e.type) for e in again] == [(refused, EventType.RESOLVED)]


async def test_one_refused_window_does_not_hold_the_others_alerts(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    windows = MaintenanceStore(engine)
    held = {}
    for service in ("checkout", "search"):
        await windows.add(
            MaintenanceWindow(
                id=f"mw_{service}",
                matchers=(f'service="{service}"',),
                starts_at=T0,
                ends_at=T0 + timedelta(hours=1),
            )
        )
        record = alert(f"{service.title()}Down", service=service, at=T0 + timedelta(minutes=5))
        assert await pipeline.process_alerts([record]) == []  # held
        held[service] = record.fingerprint
    await refuse(engine, "alerts", "fingerprint", held["checkout"])
    with caplog.at_level(logging.ERROR, logger="streams.failures"):
        released = await pipeline.release_windows(T0 + timedelta(hours=1))
    assert [(e.type, e.incident.title) for e in released] == [(EventType.OPENED, "SearchDown fired")]
    assert any(
        "maintenance window mw_checkout cannot be applied (DataError [22001]" in r.getMessage()
        for r in caplog.records
    )
    # The refused window stays due; once the database takes it, the next run releases it.
    await allow(engine, "alerts")
    again = await pipeline.release_windows(T0 + timedelta(hours=1, minutes=1))
    assert [(e.type, e.incident.title) for e in again] == [(EventType.OPENED, "CheckoutDown fired")]
