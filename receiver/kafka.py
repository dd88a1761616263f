"""Kafka plumbing the receiver owns: the alerts topic and the acknowledged publisher.

The receiver answers 2xx only after Kafka has acknowledged every record of a payload (``acks=all``,
idempotent producer); :class:`PublishError` means nothing may be reported as accepted, and the HTTP
layer turns it into 503 so Alertmanager retries.

Exactly once in the topic across Alertmanager's retries. A 503 must not leave behind records that
the producer will still deliver, or the retry writes them twice. aiokafka cannot promise that a
timed-out batch is dead (with idempotence it retries a started batch for ever and has no delivery
timeout), and no client can when a request's response is lost. So instead of pretending a 503 is
definitive, the publisher remembers what it could not confirm (:mod:`receiver.ledger`) and, when the
retry arrives, waits on the original delivery (or skips it once acknowledged) instead of writing a
second copy. Waiting uses ``asyncio.wait`` rather than ``gather``/``wait_for``: cancelling those would
cancel the delivery futures and lose the outcome the ledger depends on.

Hierarchy: :class:`PublishError` (transient, 503) is the only error :meth:`publish` raises for Kafka
problems; a record that can never be written (too large for Kafka) is refused before publishing by
the HTTP layer (422), not here.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from models.alert import AlertRecord
from receiver.ledger import InDoubtLedger, identity

__all__ = [
    "MAX_RECORD_BYTES",
    "AlertPublisher",
    "KafkaAlertPublisher",
    "PublishError",
    "PublishResult",
    "ensure_topic",
]

log = logging.getLogger(__name__)

#: Kafka's default ``message.max.bytes`` is 1048588 and aiokafka's ``max_request_size`` 1048576
#: (https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes); a record larger than
#: this (with headroom for the key and batch overhead) can never be written, so it is a 4xx.
MAX_RECORD_BYTES = 1_000_000


class PublishError(Exception):
    """Kafka did not acknowledge the records in time; the sender must retry."""


class PublishResult(NamedTuple):
    """What a successful publish did."""

    written: int
    """Records written (and acknowledged) by this call."""
    deduplicated: int
    """Records of an earlier, refused attempt that Kafka acknowledged, so not written again."""


class AlertPublisher(Protocol):
    """Writes alert records durably, or raises :class:`PublishError`."""

    async def publish(self, records: Sequence[AlertRecord]) -> PublishResult | None: ...

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        """Records acknowledged by Kafka whose 200 never reached the sender (it hung up first):
        remember them so its retry does not write them again."""

    async def ready(self) -> bool: ...


async def ensure_topic(bootstrap: str, topic: str, partitions: int, wait_seconds: float = 10.0) -> None:
    """Create ``topic`` with ``partitions`` unless it exists (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_seconds * 1000))
    try:
        await asyncio.wait_for(admin.start(), wait_seconds)
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

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        timeout: float,
        *,
        retry_dedup_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.ledger = InDoubtLedger(clock, retry_dedup_seconds)

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    max_batch_size=256 * 1024,
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

    async def publish(
        self, records: Sequence[AlertRecord], *, ack_budget: float | None = None
    ) -> PublishResult:
        """Send every record and wait until Kafka has acknowledged all of them.

        Raises :class:`PublishError` when that does not happen within ``ack_budget`` seconds
        (default: the publisher's timeout); whatever was queued is then noted in the ledger so a
        retry does not write it twice.
        """
        producer = await self._started()
        loop = asyncio.get_running_loop()
        # Queueing only blocks when the producer's buffer is full; it gets the publisher's timeout.
        # The wait for acknowledgements gets the call's budget.
        queue_deadline = loop.time() + self._timeout
        deadline = loop.time() + (self._timeout if ack_budget is None else ack_budget)
        queued: list[tuple[AlertRecord, asyncio.Future[object]]] = []
        waits: list[asyncio.Future[object]] = []
        deduplicated = 0
        answered = False
        try:
            async with asyncio.timeout_at(queue_deadline):
                for record in records:
                    if len(self.ledger):
                        earlier = self.ledger.lookup(identity(record))
                        if earlier is not None:
                            deduplicated += 1
                            waits.append(earlier)
                            continue
                        if self.ledger.full:
                            raise PublishError("too many deliveries in doubt; Kafka is not keeping up")
                    future = await producer.send(
                        self._topic, key=record.fingerprint.encode(), value=record.to_bytes()
                    )
                    queued.append((record, future))
                    waits.append(future)
            remaining = deadline - loop.time()
            if waits:
                done, pending = await asyncio.wait(
                    waits, timeout=max(remaining, 0.0), return_when=asyncio.FIRST_EXCEPTION
                )
                failed = [f for f in done if f.cancelled() or f.exception() is not None]
                if failed:
                    exc = failed[0].exception() if not failed[0].cancelled() else None
                    raise PublishError(f"Kafka did not acknowledge: {type(exc).__name__}")
                if pending:
                    raise PublishError(f"Kafka did not acknowledge {len(pending)} records in time")
            answered = True
            return PublishResult(len(queued), deduplicated)
        except (KafkaError, TimeoutError) as exc:
            raise PublishError(f"Kafka did not acknowledge: {type(exc).__name__}") from exc
        finally:
            if not answered and queued:
                # Also on cancellation (the sender hung up): its retry must not duplicate.
                self.ledger.refuse((identity(r), f) for r, f in queued)

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        """Remember acknowledged records whose sender hung up before the 200 (see the protocol)."""
        acknowledged: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        self.ledger.refuse((identity(r), acknowledged) for r in records)

    async def ready(self) -> bool:
        """True when a broker answers a metadata request now and knows the alerts topic.

        Asks the cluster rather than the producer's cached metadata, which still lists the topic
        after the broker has gone away.
        """
        try:
            producer = await self._started()
            async with asyncio.timeout(self._timeout):
                metadata = await producer.client.fetch_all_metadata()
        except (PublishError, KafkaError, OSError, TimeoutError):
            return False
        return self._topic in metadata.topics()

    async def close(self) -> None:
        """Flush and stop the producer (bounded: a down broker must not hang shutdown)."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.stop(), self._timeout)
            except TimeoutError:
                log.warning("Kafka producer did not flush within %.0fs at shutdown", self._timeout)
