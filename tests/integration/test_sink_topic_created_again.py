"""The events topic deleted and created again under the sinks (sinks/incarnation.py), on the real
broker: offsets restart at 0 in the new topic, and neither a position held by a running sink nor
one committed for the old topic may pass over the new topic's first records."""

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_admin.topic_ids import topic_ids
from kafka_admin.topics import ensure_topics
from models.events import IncidentEvent
from models.settings import Settings
from sevflow.roles.sinks import create_sink_tables
from sinks.base import Sink
from sinks.clock import SystemClock
from sinks.kafka import SinkConsumer, group_id, sink_consumer
from store.db import async_engine
from testkit.fakes import fixtures
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import sink_named, worker_for
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.kafka_io import delete_topics, wait_committed_through_end
from tests.integration.test_sink_kafka import eventually, kafka_settings

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert

PARTITIONS = 2


def openings(prefix: str, n: int) -> list[IncidentEvent]:
    return [IncidentStory(name=f"{prefix}{i}", group=f"{prefix}-g{i}").fire()[0] for i in range(n)]


async def produce_round_robin(settings: Settings, events: Sequence[IncidentEvent]) -> None:
    """``events`` spread evenly over the partitions (each incident's events on one), so each
    partition's end is known whatever the keys hash to."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n, event in enumerate(events):
            await producer.send_and_wait(
                settings.events_topic,
                key=event.incident_id.encode(),
                value=event.to_bytes(),
                partition=n % PARTITIONS,
            )
    finally:
        await producer.stop()


async def create_again(settings: Settings) -> None:
    """Delete the events topic and create it again as soon as Kafka lets us."""
    await delete_topics(settings.kafka_bootstrap, {settings.events_topic})
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topics(settings.kafka_bootstrap, [settings.topic_spec(settings.events_topic)])
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class Replica:
    """One pagerduty sink worker with its own consumer, run until :meth:`close`."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.stop = asyncio.Event()
        self.sink: Sink = sink_named(settings, engine, SystemClock(), "pagerduty")
        self.worker, _ = worker_for(self.sink, SystemClock())
        self.consumer: SinkConsumer = sink_consumer(settings, "pagerduty")
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> "Replica":
        await self.consumer.start()
        self.task = asyncio.create_task(self.worker.run(self.consumer, self.stop))
        return self

    def check(self) -> None:
        if self.task is not None and self.task.done():
            raise AssertionError(f"the sink worker ended: {self.task!r}")

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)
        await self.consumer.stop()
        await self.sink.close()


def triggers(fake: FakePagerDuty) -> Counter[str]:
    return Counter(e["dedup_key"] for e in fake.events if e["event_action"] == "trigger")


@pytest.fixture
def settings(
    kafka_bootstrap: str, tmp_path: Path, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path]
) -> Settings:
    settings = kafka_settings(
        kafka_bootstrap, tmp_path, pagerduty=fake_pagerduty, cert=tls_cert, topic_partitions=PARTITIONS
    )
    create_sink_tables(settings.sqlalchemy_url())
    return settings


async def test_a_running_sink_reads_a_topic_created_again_from_its_start(
    settings: Settings, fake_pagerduty: FakePagerDuty
) -> None:
    """6 openings paged, then the topic deleted and created again while the sink's fetching is
    paused (no fetch fails, so its metadata never shows the topic missing: as when the topic comes
    back before the consumer looks again), and 10 openings written to the new topic, beyond the
    sink's old positions (3 per partition). Read on from those positions, the sink paged the last
    4 only."""
    engine = async_engine(settings.sqlalchemy_url())
    await ensure_topics(settings.kafka_bootstrap, [settings.topic_spec(settings.events_topic)])
    replica = await Replica(settings, engine).start()
    try:
        await produce_round_robin(settings, openings("Before", 6))
        await eventually(lambda: replica.check() or len(triggers(fake_pagerduty)) == 6, "6 pages")
        group = group_id(settings, "pagerduty")
        await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, [group])
        before = (await topic_ids(settings.kafka_bootstrap, [settings.events_topic]))[
            settings.events_topic
        ]
        assert replica.consumer.incarnation.known == before

        assigned = replica.consumer.assignment()
        replica.consumer.pause(*assigned)
        await asyncio.sleep(1.5)  # the fetch in flight (a long poll) answered: none is made now
        await create_again(settings)
        await produce_round_robin(settings, openings("After", 10))
        replica.consumer.resume(*assigned)

        await eventually(
            lambda: replica.check() or len(triggers(fake_pagerduty)) == 16, "16 pages", limit=45
        )
        await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, [group])
        assert replica.consumer.incarnation.known != before
    finally:
        await replica.close()
        await engine.dispose()
    assert [key for key, n in triggers(fake_pagerduty).items() if n > 1] == []


async def test_positions_committed_for_the_old_topic_are_not_used_in_the_new_one(
    settings: Settings, fake_pagerduty: FakePagerDuty
) -> None:
    """The sink stopped; the topic deleted and created again; then positions of the old topic
    committed into the new one (what a drain at the revocation does when the topic is back by
    then) and 10 openings written to the new topic. Started again, the sink reads it from its
    start: all 10 paged, where beginning at the commits paged 4."""
    engine = async_engine(settings.sqlalchemy_url())
    await ensure_topics(settings.kafka_bootstrap, [settings.topic_spec(settings.events_topic)])
    group = group_id(settings, "pagerduty")
    replica = await Replica(settings, engine).start()
    try:
        await produce_round_robin(settings, openings("Before", 6))
        await eventually(lambda: replica.check() or len(triggers(fake_pagerduty)) == 6, "6 pages")
        await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, [group])
        old = replica.consumer.incarnation.known
        assert old is not None
    finally:
        await replica.close()

    await create_again(settings)
    await produce_round_robin(settings, openings("After", 10))
    late = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await late.start()
    try:
        partitions = [TopicPartition(settings.events_topic, p) for p in range(PARTITIONS)]
        late.assign(partitions)
        await late.commit(dict.fromkeys(partitions, (3, old)))
    finally:
        await late.stop()

    replica = await Replica(settings, engine).start()
    try:
        await eventually(
            lambda: replica.check() or len(triggers(fake_pagerduty)) == 16, "16 pages", limit=45
        )
        await wait_committed_through_end(settings.kafka_bootstrap, settings.events_topic, [group])
    finally:
        await replica.close()
        await engine.dispose()
    assert [key for key, n in triggers(fake_pagerduty).items() if n > 1] == []
