"""The built-in status page writes a change in the transaction that confirms it in the delivery
log, on SQLite and PostgreSQL: the page never shows a change the log does not hold as done (a
redelivery would then make it again), and the log never holds one the page does not show."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sinks.statuspage import StatusPageSink
from store.deliveries import DeliveryLog
from store.status_page import StatusPageStore
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import records, sink_named, sink_settings, worker_for

clock = fixtures.clock


def builtin_sink(engine: AsyncEngine, clock: FakeClock) -> StatusPageSink:
    sink = sink_named(sink_settings(), engine, clock, "statuspage")
    assert isinstance(sink, StatusPageSink)
    return sink


async def test_a_change_whose_confirmation_fails_is_not_shown(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sink = builtin_sink(engine, clock)
    story = IncidentStory()
    events = story.fire()
    assert story.incident is not None
    await sink.preload(events)
    async with engine.begin() as conn:  # the delivery log cannot be written any more
        await conn.execute(text("DROP TABLE sink_deliveries"))
    with pytest.raises(SQLAlchemyError):
        await sink.handle(events)
    assert await StatusPageStore(engine).get(story.incident.id) is None


async def test_each_change_is_shown_once_and_confirmed(engine: AsyncEngine, clock: FakeClock) -> None:
    sink = builtin_sink(engine, clock)
    story = IncidentStory()
    events = [*story.fire(), *story.ack(), *story.resolve()]
    assert story.incident is not None
    for _ in range(2):  # delivered, then redelivered whole: nothing shown twice
        worker, dead = worker_for(sink, clock)
        await worker.process(records(events))
        assert dead.letters == []
    record = await StatusPageStore(engine).get(story.incident.id)
    assert record is not None
    assert [u["status"] for u in record.updates] == ["Investigating", "Identified", "Resolved"]
    assert record.resolved_at is not None
    assert await DeliveryLog(engine).delivered_count("statuspage", story.incident.id) == 3
