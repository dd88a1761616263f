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
second copy. A retry can also arrive while the original attempt is still waiting for Kafka (its
sender hung up first), so every record is registered in the ledger as in flight just before it is
sent, and forgotten once its payload is answered 2xx. Waiting goes through a future of the
publisher's own (:func:`_settled`) rather than ``gather``/``wait_for``: cancelling those would
cancel the delivery futures and lose the outcome the ledger depends on.

Hierarchy: :meth:`publish` raises :class:`PublishError` (transient: the HTTP layer answers 503 and
Alertmanager retries) or :class:`RecordTooLarge` (permanent: 413, since retrying a record Kafka can
never take would retry for ever). The HTTP layer refuses oversized records before publishing; the
publisher checks again before sending anything (so no part of such a payload is written) and maps
the broker's own ``MessageSizeTooLargeError`` to :class:`RecordTooLarge` too.

A producer whose delivery failed is replaced. aiokafka numbers a batch (idempotence) when it takes
it from the queue, also to fail it: a batch that expired while a partition had no leader (a broker
starting up) or that the broker refused used a sequence number the broker never saw, and the broker
answers every later batch with ``OutOfOrderSequenceNumber``, for ever. A new producer has a new
producer id and starts its sequences at 0.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from kafka_admin.topics import TopicSettingsError, ensure_topic
from models.alert import AlertRecord
from models.record_limits import ALERT_BATCH_BYTES
from models.topics import TopicSpec
from receiver.ledger import Delivery, InDoubtLedger
from receiver.partitioner import partition_for

__all__ = [
    "MAX_RECORD_BYTES",
    "AlertPublisher",
    "KafkaAlertPublisher",
    "PublishError",
    "PublishResult",
    "RecordTooLarge",
    "record_bytes",
]

log = logging.getLogger(__name__)

#: Kafka's default ``message.max.bytes`` is 1048588 and aiokafka's ``max_request_size`` 1048576
#: (https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes); a record larger than
#: this (with headroom for the key and batch overhead) can never be written, so it is a 4xx.
MAX_RECORD_BYTES = 1_000_000


#: ``AlertRecord.to_bytes()`` without its detour through ``str`` (pydantic's serializer writes the
#: UTF-8 bytes itself): the same bytes, a third cheaper; tests/unit/test_receiver_kafka.py pins that.
record_bytes: Callable[[AlertRecord], bytes] = AlertRecord.__pydantic_serializer__.to_json


class PublishError(Exception):
    """Kafka did not acknowledge the records in time; the sender must retry."""


class RecordTooLarge(Exception):
    """Record ``index`` of a payload is larger than Kafka accepts: no retry can succeed (413)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"alert {index} is larger than Kafka accepts")
        self.index = index


class PublishResult(NamedTuple):
    """What a successful publish did."""

    written: int
    """Records written (and acknowledged) by this call."""
    deduplicated: int
    """Records an earlier, unanswered attempt wrote (or is writing), so not written again."""


class AlertPublisher(Protocol):
    """Writes alert records durably, or raises :class:`PublishError`."""

    async def publish(self, records: Sequence[AlertRecord]) -> PublishResult | None:
        """Write every record, or raise :class:`PublishError` / :class:`RecordTooLarge`."""

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        """Records acknowledged by Kafka whose 200 never reached the sender (it hung up first):
        remember them so its retry does not write them again."""

    async def ready(self) -> bool: ...


@dataclass
class _Attempt:
    """What one :meth:`KafkaAlertPublisher.publish` call queued or joined, and waits on."""

    queued: list[Delivery] = field(default_factory=list)
    #: Sent by an earlier attempt: waited on, not sent (each one a deduplicated record).
    joined: list[Delivery] = field(default_factory=list)
    every: list["asyncio.Future[object]"] = field(default_factory=list)
    #: The last future per partition, and those of earlier attempts: what is waited on first.
    last: dict[int, "asyncio.Future[object]"] = field(default_factory=dict)
    earlier: list["asyncio.Future[object]"] = field(default_factory=list)


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
        producer: AIOKafkaProducer | None = None,
        spec: TopicSpec | None = None,
    ) -> None:
        """``producer``: an already started producer to use instead of starting one (a test's
        stand-in for Kafka); ``clock`` times the ledger's window; ``spec``: how the topic is
        created and checked (else ``partitions`` and the cluster's defaults)."""
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._spec = spec or TopicSpec(topic, partitions)
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = producer
        self._lock = asyncio.Lock()
        #: Producers replaced after a failed delivery, being stopped (see the module docstring).
        self._retiring: set[asyncio.Task[None]] = set()
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
                    max_batch_size=ALERT_BATCH_BYTES,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await ensure_topic(self._bootstrap, self._spec, wait_seconds=self._timeout)
                    await asyncio.wait_for(producer.start(), self._timeout)
                except TopicSettingsError as exc:
                    # Writing now would weaken "nothing accepted is lost": refuse (503) and say
                    # why at every attempt, until the topic or the settings are fixed.
                    await producer.stop()
                    log.error("not publishing to %s: %s", self._topic, exc)
                    raise PublishError(f"topic settings: {exc}") from exc
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
        retry does not write it twice; a record an earlier attempt sent, still in flight or in
        doubt, is not sent again but waited on. Raises :class:`RecordTooLarge`, before sending
        anything, when a record exceeds :data:`MAX_RECORD_BYTES` (and when the broker refuses one
        as too large)."""
        values = [record_bytes(record) for record in records]
        for index, value in enumerate(values):
            if len(value) > MAX_RECORD_BYTES:
                raise RecordTooLarge(index)
        producer = await self._started()
        loop = asyncio.get_running_loop()
        # Queueing only blocks when the producer's buffer is full; it gets the publisher's timeout.
        # The wait for acknowledgements gets the call's budget.
        queue_deadline = loop.time() + self._timeout
        deadline = loop.time() + (self._timeout if ack_budget is None else ack_budget)
        attempt = _Attempt()
        acknowledging = answered = False
        try:
            async with asyncio.timeout_at(queue_deadline) as budget:
                await self._send_all(producer, records, values, attempt)
                # One timer for both phases: queued, the wait gets the call's budget.
                budget.reschedule(deadline)
                acknowledging = True
                await _acknowledged([*attempt.last.values(), *attempt.earlier], attempt.every)
            answered = True
            return PublishResult(len(attempt.queued), len(attempt.joined))
        except (KafkaError, TimeoutError) as exc:
            if acknowledging and isinstance(exc, TimeoutError):
                pending = sum(1 for f in attempt.every if not f.done())
                raise PublishError(f"Kafka did not acknowledge {pending} records in time") from exc
            raise PublishError(f"Kafka did not acknowledge: {type(exc).__name__}") from exc
        finally:
            queued = attempt.queued
            if answered:
                self.ledger.answered(queued)
            elif queued or attempt.joined:
                # Also on cancellation (the sender hung up): its retry must not duplicate.
                self.ledger.refuse([*queued, *attempt.joined])
            if not answered and any(d.future is not None and _failed(d.future) for d in queued):
                self._retire(producer)

    async def _send_all(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[AlertRecord],
        values: Sequence[bytes],
        attempt: "_Attempt",
    ) -> None:
        """Queue every record not already sent by an earlier attempt (those are joined)."""
        partitions = sorted(await producer.partitions_for(self._topic))
        for index, record in enumerate(records):
            if self.ledger.active:
                earlier = self.ledger.lookup(record)
                if earlier is not None:
                    outcome = earlier.outcome()
                    attempt.joined.append(earlier)
                    attempt.earlier.append(outcome)
                    attempt.every.append(outcome)
                    continue
                if self.ledger.full:
                    raise PublishError("too many deliveries in doubt; Kafka is not keeping up")
            key = record.fingerprint.encode()
            partition = partition_for(key, partitions)
            # In the ledger before the send, which can wait for buffer space: a retry arriving
            # meanwhile must find it.
            delivery = self.ledger.sending(record)
            future = None
            try:
                future = await producer.send(
                    self._topic, key=key, value=values[index], partition=partition
                )
            except MessageSizeTooLargeError as exc:
                raise RecordTooLarge(index) from exc
            finally:
                if future is None:
                    self.ledger.not_queued(delivery)
                else:
                    self.ledger.queued(delivery, future)
            attempt.queued.append(delivery)
            attempt.every.append(future)
            attempt.last[partition] = future

    def _retire(self, producer: AIOKafkaProducer) -> None:
        """Start over with a new producer the next time (see the module docstring): one whose
        delivery failed may have spent a sequence number and can never write again. The old one is
        stopped in the background; its pending deliveries end (the ledger reads their outcome)."""
        if self._producer is not producer:
            return  # already replaced (concurrent payloads fail together), or injected by a test
        log.warning("a Kafka delivery failed; the alerts producer is replaced by a new one")
        self._producer = None
        task = asyncio.create_task(self._stop(producer))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self._timeout)
        except TimeoutError:
            log.warning("Kafka producer did not flush within %.0fs at shutdown", self._timeout)

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        """Remember acknowledged records whose sender hung up before the 200 (see the protocol)."""
        self.ledger.unanswered(records)

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
            await self._stop(producer)
        if self._retiring:
            await asyncio.gather(*self._retiring)


def _failed(future: "asyncio.Future[object]") -> bool:
    """Whether a delivery ended in an error (not merely still pending, or cancelled)."""
    return future.done() and not future.cancelled() and future.exception() is not None


async def _acknowledged(
    first: Sequence["asyncio.Future[object]"], every: Sequence["asyncio.Future[object]"]
) -> None:
    """Return once every future of ``every`` succeeded; :class:`PublishError` at the first failure.

    Waiting on each record of a payload costs a callback per record, more than sending it. A
    partition's records are acknowledged batch by batch, in order, so this waits on ``first`` (the
    last record per partition), then checks all, and waits again only on what is still pending
    (nothing, unless a payload spanned batches). The caller bounds it in time; cancelling it never
    cancels a delivery future (the ledger needs their outcome). ``every`` is in the payload's
    order: a record the broker refused as too large is :class:`RecordTooLarge` with its index.
    """
    waits = first
    while True:
        if waits:
            await _settled(waits)
        for index, future in enumerate(every):
            if future.done() and (future.cancelled() or future.exception() is not None):
                exc = None if future.cancelled() else future.exception()
                if isinstance(exc, MessageSizeTooLargeError):
                    raise RecordTooLarge(index) from exc
                raise PublishError(f"Kafka did not acknowledge: {type(exc).__name__}")
        waits = [f for f in every if not f.done()]
        if not waits:
            return


async def _settled(futures: Sequence["asyncio.Future[object]"]) -> None:
    """Wait until all of ``futures`` are done, or one failed. Unlike ``gather`` or ``wait_for``,
    being cancelled leaves ``futures`` alone; unlike ``asyncio.wait`` it arms no timer and builds
    no sets."""
    combined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = len(futures)

    def one_settled(future: "asyncio.Future[object]") -> None:
        nonlocal left
        left -= 1
        if not combined.done() and (left == 0 or future.cancelled() or future.exception() is not None):
            combined.set_result(None)

    for future in futures:
        future.add_done_callback(one_settled)
    try:
        await combined
    finally:
        if left:  # a failure or a cancellation: leave no callback behind on the other deliveries
            for future in futures:
                future.remove_done_callback(one_settled)
