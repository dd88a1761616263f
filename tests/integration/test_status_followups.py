"""The status page keeps its "We will provide an update within 30 minutes." promise: an open
incident nothing changed for 30 minutes gets a follow-up keeping its status, on the built-in page
and on Statuspage (its fake), once even with two sinks replicas over one store.

The sink is fed records directly and :meth:`StatusPageSink.follow_up` (one round of the sinks'
follow-up loop) is called while a fake clock moves: no broker, no waiting.
"""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import IncidentEvent
from models.settings import Settings
from sinks.statuspage import StatusPageSink, follow_up_until
from store.status_page import StatusPageStore
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import records, sink_named, sink_settings, worker_for
from testkit.fakes.http import Fault
from testkit.fakes.statuspage import FakeStatuspage

clock = fixtures.clock
fake_statuspage = fixtures.fake_statuspage

INTERVAL = timedelta(minutes=30)
OPENING = (
    "We are investigating reports of users experiencing slow response times. "
    "We will provide an update within 30 minutes."
)
STILL_INVESTIGATING = (
    "We are continuing to investigate this issue. We will provide an update within 30 minutes."
)
STILL_FIXING = (
    "We are continuing to work on a fix for this issue. We will provide an update within 30 minutes."
)


@contextlib.asynccontextmanager
async def published(
    settings: Settings, engine: AsyncEngine, clock: FakeClock
) -> AsyncIterator[tuple[StatusPageSink, IncidentStory]]:
    """A status page sink with one incident opened on its page; the sink is closed on exit."""
    sink = status_sink(settings, engine, clock)
    story = IncidentStory()
    try:
        await deliver(sink, clock, story.fire())
        yield sink, story
    finally:
        await sink.close()


def status_sink(settings: Settings, engine: AsyncEngine, clock: FakeClock) -> StatusPageSink:
    sink = sink_named(settings, engine, clock, "statuspage")
    assert isinstance(sink, StatusPageSink)
    return sink


async def deliver(sink: StatusPageSink, clock: FakeClock, events: Sequence[IncidentEvent]) -> None:
    worker, dead = worker_for(sink, clock)
    await worker.process(records(events))
    assert dead.letters == []


async def builtin_updates(engine: AsyncEngine, story: IncidentStory) -> list[tuple[str, str]]:
    assert story.incident is not None
    record = await StatusPageStore(engine).get(story.incident.id)
    assert record is not None
    return [(u["status"], u["body"]) for u in record.updates]


def sp_updates(fake: FakeStatuspage) -> list[tuple[str, str]]:
    (incident,) = fake.incidents.values()
    return [(u["status"], u["body"]) for u in incident["incident_updates"]]


def follow_ups(fake: FakeStatuspage) -> list[dict[str, Any]]:
    return [body for method, body in fake.writes if method == "PATCH" and "name" not in body]


async def test_builtin_page_follows_up_every_30_minutes_until_resolved(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    async with published(sink_settings(), engine, clock) as (sink, story):
        clock.advance(29 * 60)
        assert await sink.follow_up(INTERVAL) == 0
        assert await builtin_updates(engine, story) == [("Investigating", OPENING)]

        clock.advance(60)
        assert await sink.follow_up(INTERVAL) == 1
        assert await sink.follow_up(INTERVAL) == 0  # a restart, the next round: not again
        assert await builtin_updates(engine, story) == [
            ("Investigating", OPENING),
            ("Investigating", STILL_INVESTIGATING),
        ]
        record = await StatusPageStore(engine).get(story.incident.id)  # type: ignore[union-attr]
        assert record is not None
        assert record.status == "investigating"

        clock.advance(29 * 60)
        assert await sink.follow_up(INTERVAL) == 0
        clock.advance(60)
        assert await sink.follow_up(INTERVAL) == 1
        assert len(await builtin_updates(engine, story)) == 3

        await deliver(sink, clock, story.resolve(at=story.incident.opened_at + INTERVAL))  # type: ignore[union-attr]
        clock.advance(2 * 3600)
        assert await sink.follow_up(INTERVAL) == 0
        updates = await builtin_updates(engine, story)
        assert len(updates) == 4
        assert updates[-1][0] == "Resolved"


async def test_the_loop_posts_at_most_every_30_minutes_and_stops(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sink = status_sink(sink_settings(), engine, clock)
    story = IncidentStory()
    stop = asyncio.Event()
    try:
        await deliver(sink, clock, story.fire())
        loop = asyncio.create_task(follow_up_until(sink, INTERVAL, clock, stop))
        for _ in range(2000):  # each round sleeps a minute on the fake clock, instantly
            if len(await builtin_updates(engine, story)) >= 3:
                break
            await asyncio.sleep(0.001)
        stop.set()
        await asyncio.wait_for(loop, 5)
        assert clock.slept[:3] == [60.0, 60.0, 60.0]
        record = await StatusPageStore(engine).get(story.incident.id)  # type: ignore[union-attr]
        assert record is not None
        times = [datetime.fromisoformat(u["at"]) for u in record.updates]
        assert len(times) >= 3
        assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times))
        assert all(b - a <= INTERVAL + timedelta(minutes=2) for a, b in itertools.pairwise(times))
    finally:
        await sink.close()


async def test_builtin_page_acknowledgement_restarts_the_30_minutes(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    async with published(sink_settings(), engine, clock) as (sink, story):
        clock.advance(20 * 60)
        await deliver(sink, clock, story.ack())
        clock.advance(20 * 60)  # 40 minutes since the opening, 20 since the acknowledgement
        assert await sink.follow_up(INTERVAL) == 0
        clock.advance(10 * 60)
        assert await sink.follow_up(INTERVAL) == 1
        updates = await builtin_updates(engine, story)
        assert updates[-1] == ("Identified", STILL_FIXING)
        assert len(updates) == 3


async def test_builtin_page_two_replicas_post_one_follow_up(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    settings = sink_settings()
    async with published(settings, engine, clock) as (first, story):
        second = status_sink(settings, engine, clock)  # another replica over the same store
        try:
            clock.advance(31 * 60)
            assert await first.follow_up(INTERVAL) + await second.follow_up(INTERVAL) == 1
            assert len(await builtin_updates(engine, story)) == 2
        finally:
            await second.close()


async def test_statuspage_follows_up_every_30_minutes_until_resolved(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    async with published(sink_settings(statuspage=fake_statuspage), engine, clock) as (sink, story):
        clock.advance(29 * 60)
        assert await sink.follow_up(INTERVAL) == 0
        assert follow_ups(fake_statuspage) == []

        clock.advance(60)
        assert await sink.follow_up(INTERVAL) == 1
        assert await sink.follow_up(INTERVAL) == 0
        assert follow_ups(fake_statuspage) == [{"status": "investigating", "body": STILL_INVESTIGATING}]
        assert sp_updates(fake_statuspage) == [
            ("investigating", OPENING),
            ("investigating", STILL_INVESTIGATING),
        ]

        clock.advance(29 * 60)
        assert await sink.follow_up(INTERVAL) == 0
        clock.advance(60)
        assert await sink.follow_up(INTERVAL) == 1
        assert len(follow_ups(fake_statuspage)) == 2

        await deliver(sink, clock, story.resolve(at=story.incident.opened_at + INTERVAL))  # type: ignore[union-attr]
        clock.advance(2 * 3600)
        assert await sink.follow_up(INTERVAL) == 0
        assert len(follow_ups(fake_statuspage)) == 2
        assert sp_updates(fake_statuspage)[-1][0] == "resolved"


async def test_statuspage_acknowledgement_restarts_the_30_minutes(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    async with published(sink_settings(statuspage=fake_statuspage), engine, clock) as (sink, story):
        clock.advance(20 * 60)
        await deliver(sink, clock, story.ack())
        clock.advance(20 * 60)
        assert await sink.follow_up(INTERVAL) == 0
        clock.advance(10 * 60)
        assert await sink.follow_up(INTERVAL) == 1
        assert follow_ups(fake_statuspage) == [{"status": "identified", "body": STILL_FIXING}]
        (incident,) = fake_statuspage.incidents.values()
        assert incident["status"] == "identified"


async def test_statuspage_two_replicas_post_one_follow_up(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    settings = sink_settings(statuspage=fake_statuspage)
    async with published(settings, engine, clock) as (first, _):
        second = status_sink(settings, engine, clock)  # another replica over the same store
        try:
            clock.advance(31 * 60)
            assert await first.follow_up(INTERVAL) + await second.follow_up(INTERVAL) == 1
            assert len(follow_ups(fake_statuspage)) == 1
        finally:
            await second.close()


async def test_statuspage_failed_follow_up_is_tried_again(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    settings = sink_settings(statuspage=fake_statuspage, sinks_retry_deadline_seconds=30.0)
    async with published(settings, engine, clock) as (sink, _):
        clock.advance(31 * 60)
        fake_statuspage.faults.outage(clock, [(clock.monotonic() + 120.0, Fault(503))])
        assert await sink.follow_up(INTERVAL) == 0  # logged, not raised
        clock.advance(120)
        assert await sink.follow_up(INTERVAL) == 1
        assert len(follow_ups(fake_statuspage)) == 1


async def test_a_follow_up_never_lands_over_a_resolution_being_sent(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """The resolution's PATCH is applied by Statuspage but its answer is slow; the follow-up
    round runs meanwhile. It must not post "investigating" over the resolution."""
    import threading

    async with published(sink_settings(statuspage=fake_statuspage), engine, clock) as (sink, story):
        clock.advance(31 * 60)
        fake_statuspage.faults.hold = threading.Event()
        fake_statuspage.faults.hold_if = lambda r: r.method == "PATCH" and b"resolved" in r.body
        resolving = asyncio.create_task(
            deliver(sink, clock, story.resolve(at=story.incident.opened_at + INTERVAL))  # type: ignore[union-attr]
        )
        assert await asyncio.to_thread(fake_statuspage.faults.held.wait, 10)
        assert await sink.follow_up(INTERVAL) == 0
        fake_statuspage.faults.hold.set()
        fake_statuspage.faults.hold = None
        await asyncio.wait_for(resolving, 10)
    assert follow_ups(fake_statuspage) == []
    (incident,) = fake_statuspage.incidents.values()
    assert incident["status"] == "resolved"


async def test_a_failed_follow_up_is_not_retried_over_a_later_resolution(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """A follow-up refused with a 503 is tried again on a later round, which checks the
    incident first; the sink's hour-long retry loop would have put "investigating" back over a
    resolution confirmed in between."""
    async with published(sink_settings(statuspage=fake_statuspage), engine, clock) as (sink, story):
        clock.advance(31 * 60)
        fake_statuspage.faults.fail_next(1, 503)
        assert await sink.follow_up(INTERVAL) == 0
        await deliver(sink, clock, story.resolve(at=story.incident.opened_at + INTERVAL))  # type: ignore[union-attr]
        clock.advance(60)
        assert await sink.follow_up(INTERVAL) == 0
    assert follow_ups(fake_statuspage) == []
    (incident,) = fake_statuspage.incidents.values()
    assert incident["status"] == "resolved"


@pytest.mark.parametrize("backend", ["builtin", "statuspage"])
async def test_the_texts_promise_the_configured_interval(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock, backend: str
) -> None:
    """Every text promised 30 minutes whatever SEVFLOW_STATUSPAGE_FOLLOWUP_MINUTES said: at 60
    the page broke its word every half hour, and at 0 it promised updates that never came."""
    vendor = {"statuspage": fake_statuspage} if backend == "statuspage" else {}
    hourly = sink_settings(**vendor, statuspage_followup_minutes=60)  # type: ignore[arg-type]
    async with published(hourly, engine, clock) as (sink, story):
        clock.advance(60 * 60)
        assert await sink.follow_up(timedelta(minutes=60)) == 1
        updates = sp_updates(fake_statuspage) if vendor else await builtin_updates(engine, story)
    assert [body for _, body in updates] == [
        OPENING.replace("30 minutes", "60 minutes"),
        STILL_INVESTIGATING.replace("30 minutes", "60 minutes"),
    ]


async def test_without_follow_ups_no_update_is_promised(engine: AsyncEngine, clock: FakeClock) -> None:
    async with published(sink_settings(statuspage_followup_minutes=0), engine, clock) as (_, story):
        updates = await builtin_updates(engine, story)
    assert updates == [
        ("Investigating", "We are investigating reports of users experiencing slow response times.")
    ]
