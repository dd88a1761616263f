"""Kafka plumbing of the sinks: one consumer group per sink, the dead-letter producer (topics are
created by kafka_admin.topics)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from kafka_admin.topics import CONSUMER_METADATA_MAX_AGE_MS
from models.settings import Settings
from sinks.incarnation import Incarnation

__all__ = [
    "COMMIT_WAIT",
    "HandOver",
    "SinkConsumer",
    "TopicGone",
    "TopicWatch",
    "commit_within",
    "dead_letter_producer",
    "group_id",
    "sink_consumer",
]

log = logging.getLogger(__name__)

#: Seconds an offset commit may take before it is given up (the records after the last commit
#: are delivered again by whoever reads them next, and the delivery log dedups them). Bounded
#: because aiokafka retries a commit for a deleted topic without end, and a sink waiting in it
#: never saw its stop event again.
COMMIT_WAIT = 5.0


def group_id(settings: Settings, sink: str) -> str:
    return f"{settings.sinks_group_prefix}-{sink}"


class HandOver(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only once the worker let go of them: it holds :attr:`batch` while
    it dispatches and commits a poll, and a revocation takes it, then runs :attr:`drain` (the
    worker's: the deliveries in flight finish, those waiting are cancelled, what finished is
    committed). The next owner then starts after that instead of delivering the same records at
    the same time (the delivery log is read before a call and written after it, so two processes
    delivering one event at once would both call). aiokafka returns no records while a
    reassignment is in progress. At an assignment, :attr:`assigned` runs (the consumer's
    :class:`~sinks.incarnation.Incarnation` check) holding :attr:`batch`: aiokafka already fetches
    the new partitions meanwhile, so nothing polled is dispatched or committed until it ends."""

    def __init__(self, assigned: Callable[[set[TopicPartition]], Awaitable[None]] | None = None) -> None:
        self.batch = asyncio.Lock()
        self.drain: Callable[[], Awaitable[None]] | None = None
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.batch:
            if self.drain is not None:
                await self.drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self._assigned is not None:
            async with self.batch:
                await self._assigned(assigned)


class SinkConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """A consumer subscribed to ``topic`` with its :class:`HandOver` (set before it starts), and
    the :class:`~sinks.incarnation.Incarnation` of the topic its positions belong to."""

    def __init__(self, topic: str, **config: Any) -> None:
        super().__init__(**config)
        self.incarnation = Incarnation(config["bootstrap_servers"], topic, config["group_id"])
        self.hand_over = HandOver(partial(self.incarnation.assigned, self))
        self.subscribe([topic], listener=self.hand_over)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            await self.incarnation.close()


class TopicGone(Exception):
    """A topic the sinks read was deleted while they ran: the role stops (status 1) with this
    message, instead of retrying without end. Started again, the sinks create it anew."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} no longer exists (deleted while the sinks read it)")
        self.topic = topic


class TopicWatch:
    """Tells when a subscribed topic left the cluster.

    Why: aiokafka takes a deleted topic for a passing problem (UnknownTopicOrPartition is
    retriable). Its offset commits for the topic retry without end, and its fetcher asks for
    metadata again and again, so the consumer never fails. The watch reads the consumer's own
    metadata (no request: the fetcher keeps it fresh) and raises :class:`TopicGone` once a topic
    seen there before has been absent for ``grace`` seconds: a topic is not dropped from the
    metadata for a leader election or a broker restart, only when it is deleted."""

    def __init__(
        self, consumer: AIOKafkaConsumer, grace: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._consumer = consumer
        self._grace = grace
        self._clock = clock
        self._seen: set[str] = set()
        self._absent_since: dict[str, float] = {}

    def check(self) -> None:
        """Raise :class:`TopicGone` for a topic seen before and absent ``grace`` seconds since."""
        now = self._clock()
        for topic in sorted(self._consumer.subscription()):
            if self._consumer.partitions_for_topic(topic):
                self._seen.add(topic)
                self._absent_since.pop(topic, None)
            elif topic in self._seen:
                since = self._absent_since.setdefault(topic, now)
                if now - since >= self._grace:
                    raise TopicGone(topic)


async def commit_within(commit: Coroutine[Any, Any, None], wait: float, sink: str) -> bool:
    """Await an offset ``commit`` for ``wait`` seconds at most; False (logged) when it failed or
    did not end in time: the records after the last commit will be redelivered."""
    try:
        await asyncio.wait_for(commit, wait)
    except TimeoutError:
        log.warning("%s: offset commit not done after %.0f s; records will be redelivered", sink, wait)
        return False
    except (CommitFailedError, KafkaError) as exc:
        # The group moved on without us (a session or rebalance timeout ran out): the next owner
        # redelivers from the last commit, the log dedups.
        log.warning("%s: commit failed (%s); records will be redelivered", sink, exc)
        return False
    return True


def sink_consumer(settings: Settings, sink: str) -> SinkConsumer:
    """The sink's own consumer group; offsets are committed by the worker, never automatically.

    A rebalance waits for the worker to drain (:class:`HandOver`: the deliveries in flight finish,
    held ones are cancelled), and a worker with too many records open pauses polling while its
    held incidents retry, up to the retry deadline; the group waits that long for a member to
    rejoin (``rebalance_timeout_ms``; the session timeout otherwise) before it gives the
    member's partitions to another.
    """
    batch_ms = int(max(300.0, settings.sinks_retry_deadline_seconds * 2) * 1000)
    return SinkConsumer(
        settings.events_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings, sink),
        enable_auto_commit=False,
        auto_offset_reset=settings.sinks_offset_reset,
        max_poll_interval_ms=batch_ms,
        rebalance_timeout_ms=batch_ms,
        # The relay publishes in transactions: a batch a fenced relay could not commit is skipped.
        isolation_level="read_committed",
        # An assignment left empty by a join while the broker was away lasts seconds, not minutes.
        metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
    )


def dead_letter_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
