"""The sinks on the real broker: events produced onto a fresh topic, every configured sink
consuming it in its own group, the vendor fakes receiving exactly what the playbook asks for."""

import asyncio
import functools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from kafka_admin.topics import ensure_topics
from models.events import IncidentEvent
from models.incident import LifecyclePolicy
from models.settings import Settings
from models.settings.sinks import SinkSettings
from sevflow.roles.sinks import create_sink_tables, serve_sinks
from sinks.clock import SystemClock
from sinks.dlq import dlq_list_async, dlq_replay_async
from sinks.kafka import group_id, sink_consumer
from store.db import async_engine, sync_engine
from store.incidents import IncidentStore
from store.sinks_schema import sink_deliveries
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.fakes import fixtures
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import (
    SLACK_TOKEN,
    sink_named,
    sink_settings,
    worker_for,
)
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from testkit.kafka_io import group_members, wait_committed_through_end
from testkit.local import REPO, free_port
from tests import builders

pytestmark = pytest.mark.integration

# The shared fixtures, used by name in this module.
fake_pagerduty = fixtures.fake_pagerduty
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert


@pytest.fixture
def real_slack() -> "FakeSlack":  # type: ignore[misc]
    fake = FakeSlack(SLACK_TOKEN).start()  # no clock: rate limits are not enforced here
    yield fake
    fake.close()


def kafka_settings(kafka_bootstrap: str, tmp_path: Path, **vendors: object) -> Settings:
    """Settings for a fresh topic, group and store; ``vendors``: the fakes, and any other
    setting to change."""
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "kafka_bootstrap": kafka_bootstrap,
        "events_topic": f"test-incident-events-{suffix}",
        "sinks_dlq_topic": f"test-incident-events-dlq-{suffix}",
        "sinks_group_prefix": f"test-sink-{suffix}",
        "topic_partitions": 2,
        "database_url": f"sqlite:///{tmp_path / 'sinks.db'}",
        "status_page_port": free_port(),
        "slack_channel_interval_seconds": 0.2,
        "sinks_retry_initial_seconds": 0.1,
        "sinks_retry_max_seconds": 1.0,
    }
    values.update(vendors)
    return sink_settings(**values)  # type: ignore[arg-type]


async def produce(settings: Settings, events: Sequence[IncidentEvent]) -> None:
    await ensure_topics(settings.kafka_bootstrap, [settings.topic_spec(settings.events_topic)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                settings.events_topic, key=event.incident_id.encode(), value=event.to_bytes()
            )
    finally:
        await producer.stop()


def configured_sinks(settings: Settings) -> list[str]:
    """The sinks serve_sinks runs for ``settings`` (sinks/fanout.py): the vendors configured,
    and always the Statuspage sink (the built-in status page without a Statuspage page)."""
    configured = {"pagerduty": settings.pagerduty_routing_key, "slack": settings.slack_token}
    return [name for name, value in configured.items() if value is not None] + ["statuspage"]


async def all_handled(settings: Settings) -> None:
    """Wait until every sink has committed the events topic through its end. A sink commits a
    partition only up to its oldest record not yet delivered, dead-lettered or skipped
    (sinks/offsets.py), so then every record produced so far is done with: whatever it would
    have caused twice, or extra, has happened by now."""
    groups = [group_id(settings, sink) for sink in configured_sinks(settings)]
    await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, groups)


async def eventually(check: Callable[[], object], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


class Running:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Running":
        create_sink_tables(self.settings.sqlalchemy_url())
        self.engine = async_engine(self.settings.sqlalchemy_url())
        self.task = asyncio.create_task(serve_sinks(self.settings, self.engine, self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        try:
            await asyncio.wait_for(self.task, 30)
        finally:
            await self.engine.dispose()

    def check(self) -> None:
        if self.task is not None and self.task.done() and self.task.exception():
            raise AssertionError(f"the sinks failed: {self.task.exception()!r}")


async def test_open_and_resolve_reach_every_sink_once(
    kafka_bootstrap: str,
    tmp_path: Path,
    fake_pagerduty: FakePagerDuty,
    real_slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    tls_cert: tuple[Path, Path],
) -> None:
    settings = kafka_settings(
        kafka_bootstrap,
        tmp_path,
        pagerduty=fake_pagerduty,
        slack=real_slack,
        statuspage=fake_statuspage,
        cert=tls_cert,
    )
    story = IncidentStory(name="ApiErrors")
    opened = story.fire()
    key = opened[0].incident_id
    channel = "incident-20260115-api-errors"
    async with Running(settings) as running:
        await produce(settings, opened)
        await eventually(
            lambda: running.check() or (real_slack.posts(channel) and fake_statuspage.incidents),
            "the opening to reach every sink",
        )
        await eventually(lambda: fake_pagerduty.actions(key), "the page")
        assert fake_pagerduty.actions(key) == ["trigger"]
        assert real_slack.created() == [channel]
        (announcement,) = real_slack.posts("incidents")
        assert announcement["text"].startswith(
            ":rotating_light: *INCIDENT* - [SEV2] - API Error Rate Spike"
        )
        assert announcement["text"].endswith(f"Updates in #{channel}")
        (page_incident,) = fake_statuspage.incidents.values()
        assert page_incident["status"] == "investigating"

        await produce(settings, story.resolve(at=T0 + timedelta(minutes=45)))
        await eventually(
            lambda: (
                running.check()
                or (
                    fake_pagerduty.actions(key) == ["trigger", "resolve"]
                    and any(
                        p["text"].startswith(":white_check_mark:") for p in real_slack.posts(channel)
                    )
                    and page_incident["status"] == "resolved"
                )
            ),
            "the resolution to reach every sink",
        )
        await all_handled(settings)
    resolves = [e for e in fake_pagerduty.events if e["event_action"] == "resolve"]
    assert [e["dedup_key"] for e in resolves] == [key]
    assert fake_pagerduty.actions(key) == ["trigger", "resolve"]
    resolutions = [p for p in real_slack.posts(channel) if p["text"].startswith(":white_check_mark:")]
    assert len(resolutions) == 1
    assert "*Duration:* 45 minutes" in resolutions[0]["text"]
    assert len(real_slack.posts("incidents")) == 1
    assert [u["status"] for u in page_incident["incident_updates"]] == ["investigating", "resolved"]
    assert len(fake_statuspage.incidents) == 1


async def test_dead_letters_are_listed_and_replayed_once(
    kafka_bootstrap: str,
    tmp_path: Path,
    fake_pagerduty: FakePagerDuty,
    real_slack: FakeSlack,
    tls_cert: tuple[Path, Path],
) -> None:
    settings = kafka_settings(
        kafka_bootstrap,
        tmp_path,
        pagerduty=fake_pagerduty,
        slack=real_slack,
        cert=tls_cert,
        slack_announce_channel="sev-announcements",
    )
    story = IncidentStory()
    opened = story.fire()
    async with Running(settings) as running:
        await produce(settings, opened)
        letters: list = []

        async def listed() -> None:
            nonlocal letters
            letters = await dlq_list_async(settings, sink="slack", wait_seconds=10)

        for _ in range(100):
            running.check()
            await listed()
            if letters:
                break
            await asyncio.sleep(0.2)
        (letter,) = letters
        assert letter.reason == "Slack: announcement channel #sev-announcements not found"
        assert not letter.retryable
        assert letter.event == opened[0]
        assert fake_pagerduty.actions() == ["trigger"]  # PagerDuty was not held up by Slack

        real_slack.add_channel("sev-announcements")  # the operator fixes the cause
        assert (await dlq_replay_async(settings, sink="slack", wait_seconds=10)).letters == 1
        await eventually(
            lambda: running.check() or real_slack.posts("sev-announcements"), "the replayed announcement"
        )
        assert (await dlq_replay_async(settings, sink="slack", wait_seconds=10)).letters == 1  # twice…
        await all_handled(settings)
    assert len(real_slack.posts("sev-announcements")) == 1  # …announced once
    assert real_slack.created() == ["incident-20260115-high-error-rate"]
    assert fake_pagerduty.actions() == ["trigger"]  # the replay was for Slack only


async def test_a_replayed_opening_is_followed_by_its_incidents_later_events(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """The trigger is dead-lettered; the acknowledgement and resolution arrive in later batches
    and are skipped ("not paged"). Replaying the trigger alone would leave the page open for good:
    the replay sends the incident's later events from the store after it, and PagerDuty sees
    trigger, acknowledge, resolve."""
    settings = kafka_settings(kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert)
    fake_pagerduty.faults.fail_next(1, 400)
    async with Running(settings) as running:
        pipeline = Pipeline(
            IncidentStore(running.engine),
            load_rules(None),
            LifecyclePolicy(quiet_period=timedelta(minutes=5)),
            (),
        )
        opened = await pipeline.process_alerts([builders.alert("CheckoutDown", instance="web-1")])
        incident_id = opened[0].incident_id
        await produce(settings, opened)
        letters: list = []
        for _ in range(100):
            running.check()
            letters = await dlq_list_async(settings, sink="pagerduty", wait_seconds=10)
            if letters:
                break
            await asyncio.sleep(0.2)
        (letter,) = letters
        assert (letter.event, letter.retryable) == (opened[0], False)
        later: list[IncidentEvent] = []
        for n, action in enumerate(("acknowledge", "resolve"), start=1):
            at = builders.T0 + timedelta(minutes=5 * n)
            command = builders.command(incident_id, action, at=at, command_id=f"c{n}")
            later += (await pipeline.process_command(command)).events
        assert [e.type.value for e in later] == ["acknowledged", "resolved"]
        await produce(settings, later)  # handled after the letter was written: skipped, not paged

        replayed = await dlq_replay_async(settings, sink="pagerduty", wait_seconds=10)
        assert (replayed.letters, replayed.later) == (1, 2)
        await eventually(
            lambda: running.check() or fake_pagerduty.actions(incident_id)[-1:] == ["resolve"],
            "the replayed incident to resolve in PagerDuty",
        )
        await all_handled(settings)
    assert fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge", "resolve"]
    (alert,) = fake_pagerduty.alerts
    assert alert.status == "resolved"


def _delivered(settings: Settings, sink: str, event_id: str, step: str) -> bool:
    engine = sync_engine(settings.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            status = conn.execute(
                select(sink_deliveries.c.status).where(
                    sink_deliveries.c.sink == sink,
                    sink_deliveries.c.event_id == event_id,
                    sink_deliveries.c.step == step,
                )
            ).scalar()
    finally:
        engine.dispose()
    return status == "done"


def _sinks_process(
    settings: Settings, log: Path, command: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """The sinks in a process of their own on ``settings``: ``run_sinks`` called directly, or
    ``python`` with ``command`` (such as ``-m sevflow sinks``, the CLI with its logging)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    wanted = {
        *SinkSettings.model_fields,
        "events_topic",
        "kafka_bootstrap",
        "database_url",
        "topic_partitions",
    }
    for name, value in settings.model_dump(mode="json").items():
        if value is None or name not in wanted:
            continue
        secret = getattr(settings, name)
        if hasattr(secret, "get_secret_value"):
            value = secret.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        env[f"SEVFLOW_{name.upper()}"] = str(value)
    code = (
        "from models.settings import Settings; from sevflow.roles.sinks import run_sinks; "
        "raise SystemExit(run_sinks(Settings()))"
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *(command or ("-c", code))],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_worker_killed_mid_delivery_posts_nothing_twice(
    kafka_bootstrap: str,
    tmp_path: Path,
    fake_pagerduty: FakePagerDuty,
    real_slack: FakeSlack,
    tls_cert: tuple[Path, Path],
) -> None:
    """SIGKILL while Slack is answering the announcement and PagerDuty has been paged: the next
    worker process redelivers the uncommitted event and neither pages nor posts again."""
    settings = kafka_settings(
        kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, slack=real_slack, cert=tls_cert
    )
    log = tmp_path / "sinks.log"
    story = IncidentStory()
    events = story.fire()
    real_slack.faults.hold = threading.Event()
    real_slack.faults.hold_if = lambda r: r.path.endswith("chat.postMessage")
    await produce(settings, events)
    first = _sinks_process(settings, log)
    try:
        held = await asyncio.to_thread(real_slack.faults.held.wait, 60)
        assert held, f"the announcement never arrived:\n{log.read_text()[-3000:]}"
        # Kill once the page is recorded as delivered, so that the one call seen is the one call
        # made. (Killed between PagerDuty's 202 and that record, the next worker would trigger
        # again with the same dedup_key: one PagerDuty alert still, PagerDuty deduplicates.)
        await eventually(
            functools.partial(_delivered, settings, "pagerduty", str(events[0].event_id), "trigger"),
            "the page to be recorded",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    real_slack.faults.hold.set()
    real_slack.faults.hold = None
    assert len(real_slack.posts("incidents")) == 1

    second = _sinks_process(settings, log)
    try:
        channel = "incident-20260115-high-error-rate"
        await eventually(
            lambda: second.poll() is None and real_slack.posts(channel),
            f"the intro post (log: {log})",
            60,
        )
        await all_handled(settings)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
    assert second.returncode == 0, log.read_text()[-3000:]
    assert len(real_slack.posts("incidents")) == 1
    assert real_slack.created() == [channel]
    assert len(real_slack.posts(channel)) == 1
    assert fake_pagerduty.actions() == ["trigger"]
    assert len(fake_pagerduty.alerts) == 1
    assert SLACK_TOKEN not in log.read_text()


async def test_a_rebalance_mid_batch_hands_over_without_delivering_twice(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """A second replica joins while the first is still paging a batch (PagerDuty slow to answer).
    The partitions move only once that batch is delivered and committed: the new owner starts
    after it instead of paging the same events again at the same time."""
    settings = kafka_settings(
        kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert,
        sinks_request_timeout_seconds=60.0,
    )  # fmt: skip
    create_sink_tables(settings.sqlalchemy_url())
    stories = [IncidentStory(name=f"Alert{i}", group=f"g{i}") for i in range(6)]
    events = [e for s in stories for e in s.fire()]
    assert len({e.incident_id for e in events}) == 6
    fake_pagerduty.faults.hold = threading.Event()
    await produce(settings, events)
    clock, stop = SystemClock(), asyncio.Event()
    engines, sinks, consumers, tasks = [], [], [], []

    async def replica() -> None:
        engine = async_engine(settings.sqlalchemy_url())
        sink = sink_named(settings, engine, clock, "pagerduty")
        worker, _ = worker_for(sink, clock)
        consumer = sink_consumer(settings, "pagerduty")
        engines.append(engine)
        sinks.append(sink)
        consumers.append(consumer)
        await consumer.start()  # returns once the consumer is in the group
        await worker.run(consumer, stop)

    try:
        tasks.append(asyncio.create_task(replica()))
        held = await asyncio.to_thread(fake_pagerduty.faults.held.wait, 30)
        assert held, "the first replica never paged"
        # The second joins the group: a rebalance while the first batch is in flight.
        tasks.append(asyncio.create_task(replica()))
        # The coordinator counts the second member: the rebalance has begun.
        group = group_id(settings, "pagerduty")
        members: list[tuple[str, int]] = []
        for _ in range(300):
            members.append(await group_members(settings.kafka_bootstrap, group))
            if members[-1][1] == 2:
                break
            await asyncio.sleep(0.1)
        assert members[-1][1] == 2, f"the second replica never joined: {members[-5:]}"
        # A fixed wait, on purpose: it gives a faulty hand-over time to move the partitions and
        # the second replica time to page what it finds there. Done right, nothing happens
        # meanwhile (the rebalance waits for the first replica's drain, which waits for the held
        # pages), so there is no event to wait for instead; releasing the hold as soon as the
        # second member joined let a hand-over that does not drain pass this test.
        await asyncio.sleep(8)
        fake_pagerduty.faults.hold.set()
        await eventually(lambda: len(fake_pagerduty.actions()) >= 6, "six pages")
        # And whatever would come twice: every record is committed by the group only once done.
        await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, [group])
        for task in tasks:
            assert not task.done(), task
    finally:
        fake_pagerduty.faults.hold.set()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        for sink in sinks:
            await sink.close()
        for engine in engines:
            await engine.dispose()
    assert fake_pagerduty.actions() == ["trigger"] * 6


async def test_a_sink_that_stops_itself_leaves_the_others_paging(
    kafka_bootstrap: str,
    tmp_path: Path,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack's token revoked: every post fails for good and is dead-lettered, until the Slack sink
    stops itself. PagerDuty goes on paging, before and after: the whole sinks process stopped
    with Slack, and no incident was paged until someone fixed Slack."""
    revoked = FakeSlack("xoxb-another-workspace").start()  # our token is not valid there
    try:
        settings = kafka_settings(
            kafka_bootstrap,
            tmp_path,
            pagerduty=fake_pagerduty,
            slack=revoked,
            cert=tls_cert,
            sinks_dlq_max_consecutive=2,
        )
        first = [IncidentStory(name=f"Before{n}").fire()[0] for n in range(3)]
        later = [IncidentStory(name=f"After{n}").fire()[0] for n in range(2)]
        async with Running(settings) as running:
            await produce(settings, first)
            await eventually(
                lambda: running.check() or "the other sinks go on" in caplog.text,
                "the Slack sink to stop itself",
            )
            await produce(settings, later)
            await eventually(
                lambda: (
                    running.check() or all(fake_pagerduty.actions(e.incident_id) for e in first + later)
                ),
                "every incident paged",
            )
            running.check()  # still serving
        assert "consecutive events dead-lettered; stopping" in caplog.text
        for event in first + later:
            assert fake_pagerduty.actions(event.incident_id) == ["trigger"]
    finally:
        revoked.close()


async def test_a_held_event_is_delivered_after_the_sinks_restart(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> None:
    """PagerDuty refuses one incident (500 for its dedup_key) while the incidents before and
    after it in the partition are paged; the sinks stop (a deploy) with its trigger still held.
    The committed offset did not pass it: the restarted sinks page it and then its
    acknowledgement, once each, and page nobody else again."""
    settings = kafka_settings(
        kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert,
        topic_partitions=1, sinks_request_timeout_seconds=2.0,
    )  # fmt: skip
    held = IncidentStory(name="CheckoutDown", group="held")
    before = IncidentStory(name="Before", group="before")
    after = IncidentStory(name="After", group="after")
    events = [*before.fire(), *held.fire(), *after.fire(), *held.ack(), *after.ack()]
    key, before_key, after_key = (s.events[0].incident_id for s in (held, before, after))
    fake_pagerduty.fail_dedup_key(key, until=float("inf"), clock=SystemClock())
    async with Running(settings) as running:
        await produce(settings, events)
        await eventually(
            lambda: (
                running.check()
                or (
                    fake_pagerduty.actions(before_key) == ["trigger"]
                    and fake_pagerduty.actions(after_key) == ["trigger", "acknowledge"]
                    and fake_pagerduty.failed.get(key, 0) >= 2
                )
            ),
            "the others paged while one incident is refused",
        )
    assert fake_pagerduty.actions(key) == []
    del fake_pagerduty.failing[key]  # PagerDuty takes it again

    async with Running(settings) as running:
        await eventually(
            lambda: running.check() or fake_pagerduty.actions(key) == ["trigger", "acknowledge"],
            "the held incident paged after the restart",
        )
        await all_handled(settings)
    assert fake_pagerduty.actions(key) == ["trigger", "acknowledge"]
    assert fake_pagerduty.actions(before_key) == ["trigger"]
    assert fake_pagerduty.actions(after_key) == ["trigger", "acknowledge"]
