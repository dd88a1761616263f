"""Kafka plumbing the receiver owns: the alerts topic and the acknowledged publisher.

The receiver answers 2xx only after Kafka has acknowledged every record of a payload (``acks=all``,
idempotent producer); :class:`PublishError` means nothing may be reported as accepted, and the HTTP
layer turns it into 503 so Alertmanager retries.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from models.alert import AlertRecord

__all__ = ["AlertPublisher", "KafkaAlertPublisher", "PublishError", "ensure_topic"]

log = logging.getLogger(__name__)


class PublishError(Exception):
    """Kafka did not acknowledge the records in time; the sender must retry."""


class AlertPublisher(Protocol):
    """Writes alert records durably, or raises :class:`PublishError`."""

    async def publish(self, records: Sequence[AlertRecord]) -> None: ...

    async def ready(self) -> bool: ...


async def ensure_topic(bootstrap: str, topic: str, partitions: int, wait_seconds: float = 10.0) -> None:
    """Create ``topic`` with ``partitions`` unless it exists (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_seconds * 1000))
    await asyncio.wait_for(admin.start(), wait_seconds)
    try:
        try:
            await admin.create_topics(
                [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
            )
            log.info("created topic %s with %d partitions", topic, partitions)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


class KafkaAlertPublisher:
    """An aiokafka producer keyed by fingerprint, started lazily so a down broker is a 503."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, timeout: float) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await ensure_topic(self._bootstrap, self._topic, self._partitions, self._timeout)
                    await asyncio.wait_for(producer.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise PublishError(f"Kafka unreachable: {type(exc).__name__}") from exc
                self._producer = producer
            return self._producer

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        """Send every record and wait until Kafka has acknowledged all of them."""
        producer = await self._started()
        try:
            async with asyncio.timeout(self._timeout):
                futures = [
                    await producer.send(self._topic, key=r.fingerprint.encode(), value=r.to_bytes())
                    for r in records
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise PublishError(f"Kafka did not acknowledge: {type(exc).__name__}") from exc

    async def ready(self) -> bool:
        """True when the producer is connected and knows the alerts topic."""
        try:
            producer = await self._started()
            async with asyncio.timeout(self._timeout):
                partitions = await producer.partitions_for(self._topic)
        except (PublishError, KafkaError, TimeoutError):
            return False
        return bool(partitions)

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
