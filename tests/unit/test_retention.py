"""Retention on SQLite and PostgreSQL: ``purge`` forgets exactly what belongs to incidents resolved
before the cutoff (alerts, events other than the report's, delivery logs), keeps the incident rows
and the report's events unless asked, and leaves recent and open incidents whole."""

import asyncio
from datetime import timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import Actor
from models.incident import Command, LifecyclePolicy
from store.incidents import IncidentStore
from store.retention import purge
from store.schema import alerts, incident_events, incidents
from store.sinks_schema import sink_deliveries
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import database_url, engine  # noqa: F401 - the fixtures
from tests.builders import T0, alert

CUTOFF = T0 + timedelta(days=10)


async def _incident(pipeline: Pipeline, name: str, at, resolve_at=None) -> str:  # type: ignore[no-untyped-def]
    (opened, *_) = await pipeline.process_alerts([alert(name, at=at, severity="critical")])
    if resolve_at is not None:
        await pipeline.process_command(
            Command(
                command_id=f"c-{name}",
                action="resolve",
                incident_id=opened.incident_id,
                actor=Actor(via="cli", name="ops"),
                requested_at=resolve_at,
            )
        )
    return opened.incident_id


async def _counts(engine: AsyncEngine, incident_id: str) -> dict[str, int]:  # noqa: F811
    wheres = {
        "alerts": [alerts.c.incident_id == incident_id],
        "events": [incident_events.c.incident_id == incident_id],
        "report_events": [
            incident_events.c.incident_id == incident_id,
            incident_events.c.type == "resolved",
        ],
        "deliveries": [sink_deliveries.c.incident_id == incident_id],
        "incident": [incidents.c.id == incident_id],
    }
    async with engine.connect() as conn:
        return {
            name: (await conn.execute(select(func.count()).where(*where))).scalar_one()
            for name, where in wheres.items()
        }


async def _stored(engine: AsyncEngine) -> tuple[str, str, str]:  # noqa: F811
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    old = await _incident(pipeline, "OldDown", T0, resolve_at=T0 + timedelta(hours=1))
    recent = await _incident(pipeline, "RecentDown", T0, resolve_at=CUTOFF + timedelta(days=1))
    still_open = await _incident(pipeline, "OpenDown", T0)
    async with engine.begin() as conn:
        await conn.execute(update(incident_events).values(published_at=T0))  # the relay's work
        for incident_id in (old, recent, still_open):
            await conn.execute(
                insert(sink_deliveries).values(
                    sink="slack", event_id=f"e-{incident_id}", step="post", incident_id=incident_id,
                    status="done", result={"ts": "1.2"}, started_at=T0, delivered_at=T0,
                )
            )  # fmt: skip
    return old, recent, still_open


async def test_purge_is_a_dry_run_until_asked(engine: AsyncEngine) -> None:  # noqa: F811
    old, _, _ = await _stored(engine)
    before = await _counts(engine, old)
    counted = await purge(engine, CUTOFF)
    assert counted.rows["alerts"] == 1
    assert counted.rows["sink_deliveries"] == 1
    assert counted.rows["incident_events"] == before["events"] - before["report_events"]
    assert await _counts(engine, old) == before


async def test_purge_removes_exactly_the_expired_personal_data(engine: AsyncEngine) -> None:  # noqa: F811
    old, recent, still_open = await _stored(engine)
    recent_before = await _counts(engine, recent)
    open_before = await _counts(engine, still_open)
    report_events = (await _counts(engine, old))["report_events"]
    done = await purge(engine, CUTOFF, dry_run=False)
    assert done.total > 0
    assert await _counts(engine, old) == {
        "alerts": 0, "events": report_events, "report_events": report_events, "deliveries": 0,
        "incident": 1,
    }  # fmt: skip
    assert await _counts(engine, recent) == recent_before
    assert await _counts(engine, still_open) == open_before
    # Once more: nothing left to purge.
    again = await purge(engine, CUTOFF, dry_run=False)
    assert again.total == 0


async def test_purge_with_incidents_removes_the_rows_too(engine: AsyncEngine) -> None:  # noqa: F811
    old, recent, _ = await _stored(engine)
    recent_before = await _counts(engine, recent)
    await purge(engine, CUTOFF, incidents_too=True, dry_run=False)
    assert await _counts(engine, old) == {
        "alerts": 0, "events": 0, "report_events": 0, "deliveries": 0, "incident": 0,
    }  # fmt: skip
    assert await _counts(engine, recent) == recent_before


async def test_cli_counts_then_deletes_with_yes(engine: AsyncEngine, database_url: str) -> None:  # noqa: F811
    import argparse
    import io

    from models.settings import Settings
    from sevflow.commands.purge import parse_age, run_purge

    old, _, _ = await _stored(engine)
    settings = Settings(database_url=database_url)
    now = CUTOFF + timedelta(days=400)
    out = io.StringIO()
    dry = argparse.Namespace(older_than=None, incidents=False, yes=False)
    assert await asyncio.to_thread(run_purge, settings, dry, now=now, out=out) == 0
    assert "would delete" in out.getvalue()
    assert "--yes" in out.getvalue()
    assert (await _counts(engine, old))["alerts"] == 1
    yes = argparse.Namespace(older_than=parse_age("400d"), incidents=False, yes=True)
    assert await asyncio.to_thread(run_purge, settings, yes, now=now, out=out) == 0
    assert (await _counts(engine, old))["alerts"] == 0
    off = Settings(database_url=database_url, retention_days=0)
    assert await asyncio.to_thread(run_purge, off, dry, now=now, out=out) == 0
    assert "retention is off" in out.getvalue()
