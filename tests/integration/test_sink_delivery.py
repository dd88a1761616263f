"""Each sink against its contract-enforcing fake, with the delivery log on SQLite and PostgreSQL
(the ``engine`` fixture), fed records directly (the Kafka loop is tested in test_sink_kafka.py).

Outages run on a fake clock: five minutes of 5xx then 429 pass in milliseconds.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import EVENT_SCHEMA_VERSION, EventType, IncidentEvent
from models.severity import Severity
from sinks.base import Sink
from sinks.dlq import MemoryDeadLetters
from sinks.errors import SinkStopped
from sinks.records import REPLAY_HEADER
from sinks.storm import StormDetector
from sinks.worker import Record, SinkWorker
from store.deliveries import DeliveryLog
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock, SteppedClock
from testkit.fakes.consumer import MemoryConsumer
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import (
    ROUTING_KEY,
    records,
    sink_named,
    sink_settings,
    worker_for,
)
from testkit.fakes.http import Fault, Response
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage

# The shared fixtures, used by name in this module.
clock = fixtures.clock
fake_pagerduty = fixtures.fake_pagerduty
fake_slack = fixtures.fake_slack
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert


def three_incidents() -> tuple[list[IncidentStory], list[IncidentEvent]]:
    """Three SEV2 incidents: opened, a second alert, acknowledged, resolved."""
    stories = [
        IncidentStory(name=n, group=n, service="api") for n in ("ApiErrors", "DbLatency", "QueueBacklog")
    ]
    events: list[IncidentEvent] = []
    for i, s in enumerate(stories):
        at = T0 + timedelta(seconds=i)
        events += s.fire(at=at)
        events += s.fire("fp2", at=at + timedelta(minutes=1), instance="api-2")
        events += s.ack(at=at + timedelta(minutes=2))
        events += s.resolve(at=at + timedelta(minutes=45))
    return stories, events


def outage(fake_faults, clock: FakeClock, body_429: bytes, type_429: str) -> None:  # type: ignore[no-untyped-def]
    """Five minutes: 503 (HTML) for 150 s, then 429 + Retry-After: 30 for 150 s."""
    fake_faults.outage(
        clock,
        [(150.0, Fault(503)), (300.0, Fault(429, 30, body_429, type_429))],
    )


async def test_pagerduty_outage_then_everything_once(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    stories, events = three_incidents()
    outage(fake_pagerduty.faults, clock, b"", "text/plain")
    try:
        await worker.process(records(events))
        assert dead.letters == []
        assert clock.monotonic() >= 300  # the outage really was waited out
        outage_calls = fake_pagerduty.faults.failed
        assert 0 < outage_calls < 60  # backoff and the breaker kept it from hammering
        for s in stories:
            key = s.events[0].incident_id
            assert fake_pagerduty.actions(key) == ["trigger", "acknowledge", "resolve"]
            (alert,) = [a for a in fake_pagerduty.alerts if a.dedup_key == key]
            assert alert.status == "resolved"
            assert alert.severity == "error"
        # Redelivery of everything (a restart before the commit): no call at all.
        sent = len(fake_pagerduty.server.requests)
        await worker.process(records(events))
        assert len(fake_pagerduty.server.requests) == sent
    finally:
        await sink.close()


async def test_slack_outage_then_everything_once(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    stories, events = three_incidents()
    outage(fake_slack.faults, clock, b'{"ok":false,"error":"ratelimited"}', "application/json")
    try:
        await worker.process(records(events))
        assert dead.letters == []
        assert fake_slack.faults.failed > 0
        assert sorted(fake_slack.created()) == [
            "incident-20260115-api-errors",
            "incident-20260115-db-latency",
            "incident-20260115-queue-backlog",
        ]
        announcements = fake_slack.posts("incidents")
        assert len(announcements) == 3
        assert all(
            m["text"].startswith(":rotating_light: *INCIDENT* - [SEV2] - ") for m in announcements
        )
        # Edited on ack and on resolve: the final announcement shows Resolved, without buttons.
        assert all("*Status:* Resolved" in m["text"] and len(m["blocks"]) == 1 for m in announcements)
        for s in stories:
            posts = fake_slack.posts(f"incident-20260115-{s.events[0].incident.slug}")
            texts = [p["text"] for p in posts]
            assert texts[0].startswith(":rotating_light: *INCIDENT*")
            assert texts[-1].startswith(":white_check_mark: *INCIDENT RESOLVED*")
            assert sum(t.startswith(":white_check_mark:") for t in texts) == 1
            assert any(":heavy_plus_sign: New alert" in t for t in texts)
            assert any(":eyes: Acknowledged by alice" in t for t in texts)
        calls = len(fake_slack.calls)
        await worker.process(records(events))
        assert len(fake_slack.calls) == calls
    finally:
        await sink.close()


async def test_statuspage_outage_then_everything_once(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(statuspage=fake_statuspage), engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    _, events = three_incidents()
    outage(fake_statuspage.faults, clock, b'{"message":"Rate limit exceeded"}', "application/json")
    try:
        await worker.process(records(events))
        assert dead.letters == []
        assert fake_statuspage.faults.failed > 0
        assert len(fake_statuspage.incidents) == 3
        for incident in fake_statuspage.incidents.values():
            bodies = [(u["status"], u["body"]) for u in incident["incident_updates"]]
            assert bodies[0] == (
                "investigating",
                "We are investigating reports of users experiencing slow response times. "
                "We will provide an update within 30 minutes.",
            )
            assert bodies[-1] == ("resolved", "The issue has been resolved. api is operating normally.")
            assert incident["impact"] == "major"
            assert incident["resolved_at"] is not None
        assert fake_statuspage.components["cmpapi000001"] == "operational"
        writes = len(fake_statuspage.writes)
        assert writes == 9  # per incident: create, identified, resolved
        await worker.process(records(events))
        assert len(fake_statuspage.writes) == writes
    finally:
        await sink.close()


async def test_permanent_errors_are_dead_lettered_with_their_reason(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        slack=fake_slack,
        cert=tls_cert,
        slack_announce_channel="no-such-channel",
    )
    settings = settings.model_copy(
        update={"pagerduty_routing_key": type(settings.slack_token)("short-key")}
    )
    story = IncidentStory()
    events = story.fire()
    for name, reason in [
        ("pagerduty", "PagerDuty trigger: HTTP 400: Length of 'routing_key' is incorrect"),
        ("slack", "Slack: announcement channel #no-such-channel not found"),
    ]:
        sink = sink_named(settings, engine, clock, name)
        worker, dead = worker_for(sink, clock)
        try:
            await worker.process(records(events))
        finally:
            await sink.close()
        (letter,) = dead.letters
        assert letter.reason.startswith(reason)
        assert not letter.retryable
        assert letter.event == events[0]
        assert letter.sink == name
        assert "short-key" not in letter.model_dump_json()
    assert fake_pagerduty.events == []


async def test_retry_deadline_dead_letters_as_retryable(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    settings = sink_settings(statuspage=fake_statuspage, sinks_retry_deadline_seconds=120.0)
    sink = sink_named(settings, engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    fake_statuspage.faults.outage(clock, [(10_000.0, Fault(502))])
    try:
        await worker.process(records(IncidentStory(severity=Severity.SEV1).fire()))
    finally:
        await sink.close()
    (letter,) = dead.letters
    assert letter.retryable
    assert "HTTP 502" in letter.reason
    assert clock.monotonic() <= 120 + 30  # gave up at the deadline, not later


async def test_slack_interrupted_post_is_found_not_repeated(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A worker dies while Slack is answering the announcement: the restarted worker finds the
    message by its metadata key in the channel history and does not post it again."""
    import threading

    settings = sink_settings(slack=fake_slack)
    events = IncidentStory().fire()
    fake_slack.faults.hold = threading.Event()
    fake_slack.faults.hold_if = lambda r: r.path.endswith("chat.postMessage")
    sink = sink_named(settings, engine, clock, "slack")
    worker, _ = worker_for(sink, clock)
    task = asyncio.create_task(worker.process(records(events)))
    await asyncio.to_thread(fake_slack.faults.held.wait, 10)
    task.cancel()  # the "kill": the post was made, its answer never heard
    with pytest.raises(asyncio.CancelledError):
        await task
    await sink.close()
    fake_slack.faults.hold.set()
    fake_slack.faults.hold = None
    assert len(fake_slack.posts("incidents")) == 1
    log = DeliveryLog(engine)
    pending = await log.step("slack", str(events[0].event_id), "announce")
    assert pending is not None
    assert pending.status == "pending"

    sink = sink_named(settings, engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    assert len(fake_slack.posts("incidents")) == 1
    assert len(fake_slack.created()) == 1
    assert len(fake_slack.posts("incident-20260115-high-error-rate")) == 1  # the intro


async def test_slack_interrupted_storm_digest_is_found_not_repeated(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A worker dies while Slack is answering the storm digest's post: the restarted worker finds
    it by its key instead of posting a second digest, though 500 other messages came after it."""
    import threading

    settings = sink_settings(slack=fake_slack)
    events = [
        e
        for i in range(6)
        for e in IncidentStory(name=f"Disk{i}", group=f"d{i}", severity=Severity.SEV3).fire(
            at=T0 + timedelta(seconds=i)
        )
    ]
    fake_slack.faults.hold = threading.Event()
    fake_slack.faults.hold_if = lambda r: (
        r.path.endswith("chat.postMessage") and b"ALERT STORM" in r.body
    )
    sink = sink_named(settings, engine, clock, "slack")
    worker, _ = worker_for(sink, clock, threshold=3)
    task = asyncio.create_task(worker.process(records(events)))
    await asyncio.to_thread(fake_slack.faults.held.wait, 10)
    task.cancel()  # the "kill": the digest was posted, its answer never heard
    with pytest.raises(asyncio.CancelledError):
        await task
    await sink.close()
    fake_slack.faults.hold.set()
    fake_slack.faults.hold = None
    clock.advance(5)  # past the channel's posting rate
    fake_slack.chatter("incidents", 500)

    sink = sink_named(settings, engine, clock, "slack")
    worker, dead = worker_for(sink, clock, threshold=3)
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    storms = [p for p in fake_slack.posts("incidents") if p["text"].startswith(":cyclone:")]
    assert len(storms) == 1


async def test_slack_name_taken_gets_a_suffix(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_channel("incident-20260115-high-error-rate")
    fake_slack.add_channel("incident-20260115-high-error-rate-2")
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory().fire()))
    finally:
        await sink.close()
    assert dead.letters == []
    assert fake_slack.created() == ["incident-20260115-high-error-rate-3"]
    assert fake_slack.posts("incidents")[0]["text"].endswith(
        "Updates in #incident-20260115-high-error-rate-3"
    )


async def test_slack_names_taken_twenty_times_end_with_the_incidents_own(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """The 21st incident of one alert name in a day was dead-lettered ("20 names taken"): no
    channel, and no announcement in #incidents either."""
    base = "incident-20260115-high-error-rate"
    for name in [base, *(f"{base}-{n}" for n in range(2, 21))]:
        fake_slack.add_channel(name)
    events = IncidentStory().fire()
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    own = f"{base}-{events[0].incident_id.removeprefix('inc_')}"
    assert fake_slack.created() == [own]
    assert fake_slack.posts("incidents")[0]["text"].endswith(f"Updates in #{own}")


async def test_slack_coalesces_updates_and_keeps_the_channel_rate(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    story = IncidentStory()
    opened = story.fire()
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(opened))
        burst = [e for i in range(10) for e in story.fire(f"fp{i + 2}", instance=f"api-{i + 2}")]
        await worker.process(records(burst))
    finally:
        await sink.close()
    assert dead.letters == []
    assert fake_slack.faults.failed == 0  # no 429: posts were paced one second apart per channel
    channel_posts = fake_slack.posts("incident-20260115-high-error-rate")
    updates = [p["text"] for p in channel_posts[1:]]
    # 10 new alerts (and the blast-radius severity change they cause) in one message.
    assert len(updates) == 1
    assert updates[0].count(":heavy_plus_sign: New alert") == 10
    assert ":arrow_up: Severity changed: SEV2 → SEV1" in updates[0]
    assert len(fake_slack.posts("incidents")) == 1


async def test_storm_mode_digests_sev3_and_sev4_only(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    settings = sink_settings(pagerduty=fake_pagerduty, slack=fake_slack, cert=tls_cert)
    low = [
        IncidentStory(name=f"Disk{i}", group=f"d{i}", severity=Severity.SEV3 if i % 2 else Severity.SEV4)
        for i in range(30)
    ]
    high = [IncidentStory(name=f"Down{i}", group=f"h{i}", severity=Severity.SEV1) for i in range(2)]
    first = [e for i, s in enumerate(low[:25] + high) for e in s.fire(at=T0 + timedelta(seconds=i))]
    later = [e for i, s in enumerate(low[25:]) for e in s.fire(at=T0 + timedelta(seconds=40 + i))]
    for name in ("pagerduty", "slack"):
        sink = sink_named(settings, engine, clock, name)
        worker, dead = worker_for(sink, clock, threshold=20)
        try:
            await worker.process(records(first))
            await worker.process(records(later))
        finally:
            await sink.close()
        assert dead.letters == []
    # Below the threshold (the first 20 openings) everything goes out one by one; after it the
    # SEV3/SEV4 openings join one digest per sink, while SEV1 still pages and is announced alone.
    individual = [s.events[0].incident_id for s in high + low[:20] if s.severity is not Severity.SEV4]
    triggers = [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]
    assert sorted(
        e["dedup_key"] for e in triggers if not e["dedup_key"].startswith("sevflow-storm")
    ) == sorted(individual)
    storm_alerts = [a for a in fake_pagerduty.alerts if a.dedup_key.startswith("sevflow-storm-")]
    assert len(storm_alerts) == 1  # re-triggered by the second batch, still one alert
    assert storm_alerts[0].history == ["trigger", "trigger"]
    storm_summaries = [
        e["payload"]["summary"] for e in triggers if e["dedup_key"].startswith("sevflow-storm")
    ]
    assert storm_summaries[-1].startswith("Alert storm: 5 lower-severity incidents")  # SEV3 only
    posts = fake_slack.posts("incidents")
    assert sum(p["text"].startswith(":rotating_light: *INCIDENT* - [SEV1]") for p in posts) == 2
    assert sum(p["text"].startswith(":rotating_light: *INCIDENT*") for p in posts) == 22
    (digest,) = [p for p in posts if p["text"].startswith(":cyclone: *ALERT STORM*")]
    assert digest["text"].startswith(":cyclone: *ALERT STORM* - 10 SEV3/SEV4 incidents")
    assert digest.get("edits") == 1  # the second batch edited the digest instead of posting again
    assert len(fake_slack.created()) == 22


async def test_unknown_event_types_and_poison(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    (opened,) = IncidentStory().fire()
    future = json.loads(opened.to_bytes())
    future["type"] = "postmortem_published"
    batch = records([opened])
    batch.append(type(batch[0])("incident-events", 0, 1, json.dumps(future).encode()))
    batch.append(type(batch[0])("incident-events", 0, 2, b"\x00garbage"))
    try:
        await worker.process(batch)
    finally:
        await sink.close()
    assert fake_pagerduty.actions() == ["trigger"]
    (poison,) = dead.letters
    assert poison.reason == "invalid event: not JSON"
    assert poison.source.offset == 2
    assert poison.event is None
    assert opened.type is EventType.OPENED
    assert ROUTING_KEY not in poison.model_dump_json()


async def test_a_newer_schema_version_is_dead_lettered_with_a_log_line(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event of a newer schema is not paged as if it were this version's, and every poison
    record says in the log where it was and why it was dead-lettered."""
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    (opened,) = IncidentStory().fire()
    newer = json.loads(opened.to_bytes())
    newer["schema_version"] = EVENT_SCHEMA_VERSION + 1
    batch = [
        Record("incident-events", 3, 7, json.dumps(newer).encode()),
        Record("incident-events", 3, 8, b"{not json"),
    ]
    try:
        with caplog.at_level(logging.ERROR, logger="sinks.worker"):
            await worker.process(batch)
    finally:
        await sink.close()
    assert fake_pagerduty.actions() == []
    letter, poison = dead.letters
    assert letter.reason.startswith("newer event schema_version 2")
    assert (letter.incident_id, letter.event_id) == (opened.incident_id, str(opened.event_id))
    assert letter.event is None
    assert letter.raw is not None
    assert poison.reason == "invalid event: not JSON"
    logged = [r.getMessage() for r in caplog.records]
    assert any("incident-events/3@7" in m and "newer event schema_version" in m for m in logged)
    assert any("incident-events/3@8" in m and "not JSON" in m for m in logged)


async def test_a_run_of_undecodable_records_does_not_stop_the_sink(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """Records no version could read are dead-lettered however many there are: counted towards
    the consecutive dead letters, a burst of them stopped the sink on every restart (the batch
    is not committed), and no fix of the sink gets past records that stay on the topic. Events
    a newer version would deliver still count: the sink stops until it is upgraded."""
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker = SinkWorker(
        sink,
        dead_letters=MemoryDeadLetters(),
        storm=StormDetector(20),
        clock=clock,
        concurrency=8,
        max_consecutive_dead=3,
    )
    (opened,) = IncidentStory().fire()
    garbage = [Record("incident-events", 0, i, b"{not json") for i in range(5)]
    newer = json.loads(opened.to_bytes())
    newer["schema_version"] = EVENT_SCHEMA_VERSION + 1
    upgrade = [Record("incident-events", 1, i, json.dumps(newer).encode()) for i in range(3)]
    try:
        await worker.process(garbage)
        await worker.process([*garbage, Record("incident-events", 0, 5, opened.to_bytes())])
        with pytest.raises(SinkStopped, match="3 consecutive events dead-lettered"):
            await worker.process(upgrade)
    finally:
        await sink.close()
    assert fake_pagerduty.actions() == ["trigger"]


async def test_sinks_keep_their_own_pace(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    tls_cert: tuple[Path, Path],
) -> None:
    """A Slack that answers slowly does not delay the page: separate workers, separate clocks."""
    from sinks.clock import SystemClock

    settings = sink_settings(pagerduty=fake_pagerduty, slack=fake_slack, cert=tls_cert)
    fake_slack.faults.delay = 0.5
    events = IncidentStory().fire()
    clock = SystemClock()
    pd = sink_named(settings, engine, clock, "pagerduty")
    slack: Sink = sink_named(settings, engine, clock, "slack")
    pd_worker, _ = worker_for(pd, clock)
    slack_worker, _ = worker_for(slack, clock)
    slow = asyncio.create_task(slack_worker.process(records(events)))
    try:
        await asyncio.wait_for(pd_worker.process(records(events)), 5)
        assert fake_pagerduty.actions() == ["trigger"]
        assert not slow.done()  # Slack still busy while the page is out
        await asyncio.wait_for(slow, 30)
    finally:
        await pd.close()
        await slack.close()
    assert len(fake_slack.posts("incidents")) == 1


async def test_statuspage_interrupted_create_is_found_not_repeated(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    import threading

    settings = sink_settings(statuspage=fake_statuspage)
    story = IncidentStory(severity=Severity.SEV1)
    events = story.fire()
    fake_statuspage.faults.hold = threading.Event()
    fake_statuspage.faults.hold_if = lambda r: r.method == "POST"
    sink = sink_named(settings, engine, clock, "statuspage")
    worker, _ = worker_for(sink, clock)
    task = asyncio.create_task(worker.process(records(events)))
    await asyncio.to_thread(fake_statuspage.faults.held.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sink.close()
    fake_statuspage.faults.hold.set()
    fake_statuspage.faults.hold = None

    sink = sink_named(settings, engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records([*events, *story.resolve()]))
    finally:
        await sink.close()
    assert dead.letters == []
    assert [method for method, _ in fake_statuspage.writes] == ["POST", "PATCH"]  # found, then resolved
    (incident,) = fake_statuspage.incidents.values()
    assert incident["status"] == "resolved"
    assert incident["impact"] == "critical"


async def test_pagerduty_interrupted_trigger_lands_on_the_same_alert(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """PagerDuty has no way to ask "did my trigger arrive?": a worker killed between PagerDuty's
    202 and the delivery log's record sends the trigger again, and the dedup_key (the incident id)
    makes PagerDuty keep one alert. Nothing later is repeated."""
    import threading

    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    story = IncidentStory()
    events = story.fire()
    fake_pagerduty.faults.hold = threading.Event()
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, _ = worker_for(sink, clock)
    task = asyncio.create_task(worker.process(records(events)))
    await asyncio.to_thread(fake_pagerduty.faults.held.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sink.close()
    fake_pagerduty.faults.hold.set()
    fake_pagerduty.faults.hold = None

    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records([*events, *story.resolve()]))
        await worker.process(records([*events, *story.events[1:]]))  # and a plain redelivery
    finally:
        await sink.close()
    assert dead.letters == []
    (alert,) = fake_pagerduty.alerts
    assert alert.history == ["trigger", "trigger", "resolve"]
    assert alert.status == "resolved"


async def test_a_storms_pagerduty_alert_resolves_with_its_last_incident(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """The storm's one PagerDuty alert stands for the incidents it summarised: it resolves when
    the last of them resolves, not before (and not never, leaving the on-call to close it)."""
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    stories = [IncidentStory(name=f"Disk{i}", group=f"d{i}", severity=Severity.SEV3) for i in range(5)]
    opened = [e for i, s in enumerate(stories) for e in s.fire(at=T0 + timedelta(seconds=i))]
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock, threshold=2)
    try:
        await worker.process(records(opened))
        (storm,) = [a for a in fake_pagerduty.alerts if a.dedup_key.startswith("sevflow-storm-")]
        paged = {e["dedup_key"] for e in fake_pagerduty.events}
        digested = [s for s in stories if s.events[0].incident_id not in paged]
        individual = [s for s in stories if s not in digested]
        assert (len(digested), len(individual)) == (3, 2)
        for n, story in enumerate([*digested[:2], *individual]):
            await worker.process(records(story.resolve(at=T0 + timedelta(minutes=10 + n))))
        assert storm.status == "triggered"  # one summarised incident is still open
        await worker.process(records(digested[2].resolve(at=T0 + timedelta(minutes=30))))
        assert storm.status == "resolved"
        assert storm.history == ["trigger", "resolve"]
        await worker.process(records(digested[2].events[-1:]))  # redelivered: no second resolve
    finally:
        await sink.close()
    assert dead.letters == []
    assert storm.history == ["trigger", "resolve"]
    for story in individual:
        assert fake_pagerduty.actions(story.events[0].incident_id) == ["trigger", "resolve"]


async def test_a_storms_pagerduty_alert_resolves_when_a_member_resolves_in_its_opening_batch(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """An incident digested during a storm whose resolution is in the same polled batch as its
    opening (a backlog, a short flap): the digest must count it resolved. Its resolution used to
    be delivered before the digest recorded its members, so the member stayed open in the log
    and the storm's PagerDuty alert stayed triggered for ever."""
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    stories = [IncidentStory(name=f"Disk{i}", group=f"d{i}", severity=Severity.SEV3) for i in range(5)]
    opened = [e for i, s in enumerate(stories) for e in s.fire(at=T0 + timedelta(seconds=i))]
    flapped = stories[4].resolve(at=T0 + timedelta(seconds=30))  # digested, resolved at once
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock, threshold=2)
    try:
        await worker.process(records([*opened, *flapped]))
        (storm,) = [a for a in fake_pagerduty.alerts if a.dedup_key.startswith("sevflow-storm-")]
        paged = {e["dedup_key"] for e in fake_pagerduty.events}
        digested = [s for s in stories if s.events[0].incident_id not in paged]
        assert stories[4] in digested
        assert len(digested) == 3
        assert storm.status == "triggered"
        for n, story in enumerate(s for s in stories if s is not stories[4]):
            await worker.process(records(story.resolve(at=T0 + timedelta(minutes=10 + n))))
        assert storm.status == "resolved"
        assert storm.history == ["trigger", "resolve"]
    finally:
        await sink.close()
    assert dead.letters == []


async def test_a_backlog_reaching_past_a_storm_is_delivered(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A polled batch whose openings reach past the storm's end: the storm's openings go into its
    digest, the later one out on its own (this batch used to crash the worker on every
    redelivery)."""
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    storm = [
        IncidentStory(name=f"Disk{i}", group=f"d{i}", severity=Severity.SEV3).fire(
            at=T0 + timedelta(seconds=i)
        )[0]
        for i in range(5)
    ]
    late = IncidentStory(name="Late", group="late", severity=Severity.SEV3).fire(
        at=T0 + timedelta(seconds=90)
    )[0]
    try:
        worker, dead = worker_for(sink, clock, threshold=3)
        await worker.process(records([*storm, late]))
        assert dead.letters == []
        assert "incident-20260115-late" in fake_slack.created()
        (digest,) = [
            p for p in fake_slack.posts("incidents") if p["text"].startswith(":cyclone: *ALERT STORM*")
        ]
        assert digest["text"].startswith(":cyclone: *ALERT STORM* - 2 SEV3/SEV4 incidents")
    finally:
        await sink.close()


async def test_a_slack_post_error_inside_the_pacer_is_retried(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A transient error on a post (made inside the channel pacer) is retried; it used to escape
    the worker as a FrozenInstanceError, with neither retry nor dead letter."""
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    post = fake_slack._chat_postMessage
    failures = [Response(503, {"ok": False, "error": "service_unavailable"})]

    def flaky(args: dict[str, Any]) -> Response:
        return failures.pop() if failures else post(args)

    fake_slack._chat_postMessage = flaky  # type: ignore[method-assign]
    try:
        await worker.process(records(IncidentStory().fire()))
        assert dead.letters == []
        assert failures == []
        assert len(fake_slack.posts("incidents")) == 1
    finally:
        await sink.close()


async def test_a_slack_5xx_that_is_not_json_is_retried(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """An edge proxy's error page labelled application/json: the SDK then hands over aiohttp's
    response, which the sender used to read as Slack's (AttributeError out of the worker)."""
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    fake_slack.faults.fail_next(1, 502, body=b"Bad Gateway", content_type="application/json")
    try:
        await worker.process(records(IncidentStory().fire()))
        assert dead.letters == []
        assert fake_slack.faults.failed == 1
        assert fake_slack.created() == ["incident-20260115-high-error-rate"]
    finally:
        await sink.close()


async def test_an_incident_acknowledged_before_it_paged_reaches_pagerduty_acknowledged(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    """A SEV4 is acknowledged, then raised to SEV1: its first page is acknowledged at once, and
    the status page shows it identified; a replay pages nobody again (it may acknowledge again:
    the replayed acknowledgement now finds the incident paged, and PagerDuty takes it as a
    no-op)."""
    settings = sink_settings(pagerduty=fake_pagerduty, statuspage=fake_statuspage, cert=tls_cert)
    story = IncidentStory(severity=Severity.SEV4)
    events = [*story.fire(), *story.ack(at=T0 + timedelta(minutes=2))]
    events += story.fire("fp2", at=T0 + timedelta(minutes=3), instance="api-2", severity=Severity.SEV1)
    sinks = [sink_named(settings, engine, clock, n) for n in ("pagerduty", "statuspage")]
    workers = [worker_for(sink, clock) for sink in sinks]
    try:
        for worker, _ in workers:
            await worker.process(records(events))
        (alert,) = fake_pagerduty.alerts
        assert (alert.status, alert.history) == ("acknowledged", ["trigger", "acknowledge"])
        (public,) = fake_statuspage.incidents.values()
        assert public["status"] == "identified"
        for worker, dead in workers:
            await worker.process(records(events))
            assert dead.letters == []
        assert alert.history.count("trigger") == 1
    finally:
        for sink in sinks:
            await sink.close()


async def test_events_after_a_failed_one_are_held_back_and_replayed_in_order(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    """An outage outlasts the retry deadline of an incident's opening: its acknowledgement and
    resolution are dead-lettered with it (they used to be skipped as "not paged"), so replaying
    the dead letters pages, acknowledges and resolves, in order, instead of leaving a page open."""
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        statuspage=fake_statuspage,
        cert=tls_cert,
        sinks_retry_deadline_seconds=120.0,
    )
    story = IncidentStory(severity=Severity.SEV1)
    events = [*story.fire(), *story.ack(), *story.resolve()]
    for name, fake in (("pagerduty", fake_pagerduty), ("statuspage", fake_statuspage)):
        sink = sink_named(settings, engine, clock, name)
        worker, dead = worker_for(sink, clock)
        fake.faults.outage(clock, [(clock.monotonic() + 300.0, Fault(503))])
        try:
            await worker.process(records(events))
            assert [
                (d.event.type, d.reason.startswith("held back after opened failed: "))
                for d in dead.letters
            ] == [
                (EventType.OPENED, False),
                (EventType.ACKNOWLEDGED, True),
                (EventType.RESOLVED, True),
            ]
            clock.advance(600)  # the outage is over; the operator replays the dead letters
            replay = [
                Record(
                    "incident-events", 0, 100 + i, d.event.to_bytes(), [(REPLAY_HEADER, name.encode())]
                )
                for i, d in enumerate(dead.letters)
            ]
            await worker.process(replay)
        finally:
            await sink.close()
    (alert,) = fake_pagerduty.alerts
    assert (alert.status, alert.history) == ("resolved", ["trigger", "acknowledge", "resolve"])
    (public,) = fake_statuspage.incidents.values()
    assert [u["status"] for u in public["incident_updates"]] == [
        "investigating",
        "identified",
        "resolved",
    ]


async def test_statuspage_success_without_json_is_asked_again(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """A proxy answers 200 with an HTML page instead of Statuspage's JSON: the create is retried
    (and reconciled), not an exception out of the worker; one incident on the page."""
    sink = sink_named(sink_settings(statuspage=fake_statuspage), engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    fake_statuspage.faults.fail_next(1, 200, body=b"<html>OK</html>", content_type="text/html")
    story = IncidentStory(severity=Severity.SEV1)
    try:
        await worker.process(records([*story.fire(), *story.ack()]))
        assert dead.letters == []
        assert fake_statuspage.faults.failed == 1
        (public,) = fake_statuspage.incidents.values()
        assert [u["status"] for u in public["incident_updates"]] == ["investigating", "identified"]
    finally:
        await sink.close()


def huge_sev1() -> IncidentStory:
    """A SEV1 whose alert is as large as its labels and annotations can make it: 300 labels of
    3 KB (with an emoji and an ``&`` in each, so a cut can land in either), an 8 KB summary and a
    900 KB description (the status page shows only its huge public annotations: summary_public,
    impact)."""
    value = "😀 a&b " + "x" * 3000
    return IncidentStory(
        name="CheckoutDown",
        severity=Severity.SEV1,
        service="api",
        summary="Checkout down & <!channel> " + "s" * 8192,
        impact=None,
        labels={f"label_{n:03d}": value for n in range(300)},
        annotations={
            "description": "Everything is down. " + "d" * 900_000,
            "summary_public": "Checkout down " + "s" * 8192,
            "impact": "Errors everywhere " + "d" * 900_000,
        },
    )


async def test_a_sev1_with_huge_labels_is_paged_announced_and_published(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    fake_slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    """Every vendor refuses a call over its size limits for good (the fakes enforce them): a SEV1
    whose labels and annotations are huge is still paged, announced and published, shortened
    with a visible marker naming where the whole incident is, and nothing is dead-lettered."""
    settings = sink_settings(
        pagerduty=fake_pagerduty, slack=fake_slack, statuspage=fake_statuspage, cert=tls_cert
    )
    story = huge_sev1()
    events = story.fire() + story.fire("fp2", at=T0 + timedelta(minutes=1), instance="api-2")
    events += story.resolve()
    incident_id = events[0].incident_id
    see = f"sevflow incidents show {incident_id}"
    for name in ("pagerduty", "slack", "statuspage"):
        sink = sink_named(settings, engine, clock, name)
        worker, dead = worker_for(sink, clock)
        try:
            await worker.process(records(events))
        finally:
            await sink.close()
        assert dead.letters == [], name

    (alert,) = fake_pagerduty.alerts
    assert alert.history == ["trigger", "resolve"]
    (trigger,) = [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]
    assert len(json.dumps(trigger, ensure_ascii=False, separators=(",", ":")).encode()) <= 512_000
    assert trigger["payload"]["summary"].endswith(f"… (truncated, see {see})")
    details = trigger["payload"]["custom_details"]
    assert see in details["truncated"]
    assert len(details["labels"]) == 304  # every label is there, each shortened visibly
    assert details["labels"]["label_000"].startswith("😀 a&b xxx")
    assert details["labels"]["label_000"].endswith("… (truncated)")

    (announcement,) = fake_slack.posts("incidents")
    assert "… (truncated, see `" + see + "`)" in announcement["text"]
    section = announcement["blocks"][0]["text"]["text"]
    assert "&amp; &lt;!channel&gt;" in section  # escaped, not obeyed
    assert "Updates in #incident-20260115-" in section  # the channel is still named
    channel = fake_slack.by_name(next(n for n in fake_slack.created()))
    assert channel is not None
    assert any("truncated" in m["text"] for m in channel.messages)

    (published,) = fake_statuspage.incidents.values()
    assert published["status"] == "resolved"
    assert published["name"].endswith("… (truncated)")
    opening = published["incident_updates"][0]["body"]
    assert opening.startswith("We are investigating reports of errors everywhere ddd")
    assert "… (truncated)" in opening


async def _paged_within(check: Callable[[], bool], clock: SteppedClock, limit: float = 5.0) -> None:
    """Wait until ``check()``, letting the sink's clock run on one second at a time, ``limit``
    seconds of sink time at most (each second gets a few seconds of real time to show it)."""
    started = clock.monotonic()
    while True:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            if check():
                return
            await asyncio.sleep(0.01)
        if clock.monotonic() - started >= limit:
            raise AssertionError(f"not paged within {limit:g} s of sink time")
        clock.advance(1.0)


async def _run_clock_to(clock: SteppedClock, until: float, step: float = 10.0) -> None:
    while clock.monotonic() < until:
        clock.advance(step)
        await asyncio.sleep(0.02)  # the woken retries run


async def test_one_failing_incident_does_not_hold_the_others(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """PagerDuty answers 500 to one incident's dedup_key for ten minutes of sink time. The other
    incidents' events, before and after it in the same partition, polled with it and later, are
    each paged within 5 s of sink time; the failing incident's acknowledgement and resolution wait
    behind its trigger; after the ten minutes all three go out, once each, in order. The offset
    committed never passes the event still undelivered."""
    clock = SteppedClock()
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    consumer = MemoryConsumer()
    partition = TopicPartition(consumer.topic, 0)
    held = IncidentStory(name="CheckoutDown", group="held")
    others = [IncidentStory(name=f"Other{n}", group=f"other{n}") for n in range(4)]
    (held_open,) = held.fire()
    key = held_open.incident_id
    fake_pagerduty.fail_dedup_key(key, until=600.0, clock=clock, status=500)

    def paged(story: IncidentStory, *actions: str) -> Callable[[], bool]:
        return lambda: fake_pagerduty.actions(story.events[0].incident_id) == list(actions)

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(consumer, stop))
    try:
        # One poll: an incident before the failing one, one after it, then later events of each.
        consumer.append([*others[0].fire(), held_open, *others[1].fire()])
        consumer.append([*held.ack(), *others[0].ack()])
        await _paged_within(paged(others[0], "trigger", "acknowledge"), clock)
        await _paged_within(paged(others[1], "trigger"), clock)
        assert fake_pagerduty.actions(key) == []
        assert fake_pagerduty.failed[key] >= 1

        await _run_clock_to(clock, 100.0)
        consumer.append(others[2].fire())
        await _paged_within(paged(others[2], "trigger"), clock)
        await _run_clock_to(clock, 300.0)
        consumer.append([*held.resolve(), *others[3].fire(), *others[1].resolve()])
        await _paged_within(paged(others[3], "trigger"), clock)
        await _paged_within(paged(others[1], "trigger", "resolve"), clock)
        assert fake_pagerduty.actions(key) == []  # acknowledge and resolve wait behind the trigger
        assert consumer.committed[partition] == 1  # the failing trigger's offset: nothing past it

        await _run_clock_to(clock, 700.0)
        end = len(consumer.logs[partition])
        await _paged_within(
            lambda: (
                consumer.committed.get(partition) == end
                and fake_pagerduty.actions(key) == ["trigger", "acknowledge", "resolve"]
            ),
            clock,
            limit=120.0,
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await sink.close()
    assert dead.letters == []
    (alert,) = [a for a in fake_pagerduty.alerts if a.dedup_key == key]
    assert alert.history == ["trigger", "acknowledge", "resolve"]
    for story, actions in zip(others, [2, 2, 1, 1], strict=True):
        assert len(fake_pagerduty.actions(story.events[0].incident_id)) == actions


class _CommitNeverAnswers(MemoryConsumer):
    """Commits as aiokafka's do for a topic deleted under the consumer: retried without end."""

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits += 1
        await asyncio.Event().wait()


async def test_a_commit_that_never_ends_holds_neither_the_deliveries_nor_the_stop(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """Each commit is given up after ``commit_wait``: later polls are still delivered, and a stop
    ends the worker (it waited in the first commit for ever before)."""
    sink = sink_named(sink_settings(pagerduty=fake_pagerduty, cert=tls_cert), engine, clock, "pagerduty")
    worker, _ = worker_for(sink, clock, commit_wait=0.2)
    consumer = _CommitNeverAnswers()
    first = IncidentStory(name="First", group="first")
    second = IncidentStory(name="Second", group="second")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(consumer, stop))
    try:
        consumer.append(first.fire())
        await _paged_within(lambda: len(fake_pagerduty.actions()) == 1, clock)
        consumer.append(second.fire())
        await _paged_within(lambda: len(fake_pagerduty.actions()) == 2, clock)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
        await sink.close()
    assert consumer.commits >= 2
    assert consumer.committed == {}
