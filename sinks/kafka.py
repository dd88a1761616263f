"""Kafka plumbing of the sinks: one consumer group per sink, the dead-letter producer (topics are
created by kafka_admin.topics)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from models.settings import Settings

__all__ = [
    "HandOver",
    "SinkConsumer",
    "dead_letter_producer",
    "group_id",
    "sink_consumer",
]

log = logging.getLogger(__name__)


def group_id(settings: Settings, sink: str) -> str:
    return f"{settings.sinks_group_prefix}-{sink}"


class HandOver(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only once the worker let go of them: it holds :attr:`batch` while
    it dispatches and commits a poll, and a revocation takes it, then runs :attr:`drain` (the
    worker's: the deliveries in flight finish, those waiting are cancelled, what finished is
    committed). The next owner then starts after that instead of delivering the same records at
    the same time (the delivery log is read before a call and written after it, so two processes
    delivering one event at once would both call). aiokafka returns no records while a
    reassignment is in progress."""

    def __init__(self) -> None:
        self.batch = asyncio.Lock()
        self.drain: Callable[[], Awaitable[None]] | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.batch:
            if self.drain is not None:
                await self.drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


class SinkConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """A consumer subscribed to ``topic`` with its :class:`HandOver` (set before it starts)."""

    def __init__(self, topic: str, **config: Any) -> None:
        super().__init__(**config)
        self.hand_over = HandOver()
        self.subscribe([topic], listener=self.hand_over)


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
    )


def dead_letter_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
