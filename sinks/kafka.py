"""Kafka plumbing of the sinks: topics, one consumer group per sink, the dead-letter producer."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from models.settings import Settings

__all__ = ["dead_letter_producer", "ensure_topics", "group_id", "sink_consumer"]

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int, wait_seconds: float = 10.0
) -> None:
    """Create each topic unless it exists (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_seconds * 1000))
    await asyncio.wait_for(admin.start(), wait_seconds)
    try:
        for topic in topics:
            try:
                await admin.create_topics(
                    [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
                )
                log.info("created topic %s", topic)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def group_id(settings: Settings, sink: str) -> str:
    return f"{settings.sinks_group_prefix}-{sink}"


def sink_consumer(settings: Settings, sink: str) -> AIOKafkaConsumer:
    """The sink's own consumer group; offsets are committed by the worker, never automatically."""
    return AIOKafkaConsumer(
        settings.events_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings, sink),
        enable_auto_commit=False,
        auto_offset_reset=settings.sinks_offset_reset,
        max_poll_interval_ms=int(max(300.0, settings.sinks_retry_deadline_seconds * 2) * 1000),
    )


def dead_letter_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=2
    )
