"""The outbox relay: publishes stored incident events to the ``incident-events`` topic.

Events are written to ``incident_events`` in the same transaction as the change they describe;
this relay sends the unpublished ones in storage order (so each incident's events keep their
sequence order), waits for Kafka's acknowledgement (acks=all) and only then marks them published.
A crash between the ack and the mark would publish a batch twice; to prevent that, a relay that
has just (re)acquired its lease, or whose last publish or mark failed, first reads the tail of
every partition and marks the events it finds there as published. One lease (store/leases.py)
makes sure only one worker relays at a time, and the mark is fenced by the lease token. The
lease and the outbox are read and written through the database's driver
(store/driver_outbox.py), which keeps the relay's process small.

A relay that lost its lease while it was publishing (Kafka slow for longer than the lease, the
process paused) may still be sending when the next holder has read the tail and published the
same events. Kafka fences it: every relay of a deployment publishes each batch in a transaction
under one transactional id, so the next holder's producer, when it starts, aborts whatever the
old one has not committed and makes its later sends fail. Consumers of ``incident-events`` read
with ``isolation.level=read_committed`` (the sinks, the analytics readers and the example do) and
never see an aborted batch.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from models.event_size import fitted_document
from store.driver_outbox import DriverOutbox, OutboxRow

if TYPE_CHECKING:  # (the relay's process never imports the settings: RelaySettings.of is the worker's)
    from models.settings import Settings

__all__ = ["EventPublisher", "KafkaEventPublisher", "OutboxRelay", "RelaySettings", "event_id_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaySettings:
    """What the relay needs of the worker's :class:`Settings`. The worker hands it to the relay's
    process on a pipe (streams/relay_process.py), so the relay relays for the settings the worker
    was started with and never reads the environment again; the database URL, a secret, is in
    neither the process's arguments nor its environment."""

    database_url: str
    kafka_bootstrap: str
    events_topic: str
    app_id: str
    log_level: str

    @classmethod
    def of(cls, settings: "Settings") -> "RelaySettings":
        return cls(
            database_url=settings.sqlalchemy_url(),
            kafka_bootstrap=settings.kafka_bootstrap,
            events_topic=settings.events_topic,
            app_id=settings.app_id,
            log_level=settings.log_level,
        )

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "RelaySettings":
        return cls(**json.loads(data))


def event_id_of(value: bytes | None) -> str | None:
    """The ``event_id`` of a record of the events topic; None for a record that is no sevflow
    event (another producer's, a tombstone): the relay's recovery reads past it instead of
    failing on it every round, which would stop every event's publication. (Not
    ``models.wire.json_object``: the relay's process loads no models, nor pydantic.)"""
    try:
        document = json.loads(value) if value is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    found = document.get("event_id") if isinstance(document, dict) else None
    return found if isinstance(found, str) else None


class EventPublisher(Protocol):
    """Where the relay sends events: (key, value) pairs, acknowledged before returning."""

    async def publish(self, records: Sequence[tuple[str, bytes]]) -> None: ...

    async def recent_event_ids(self, per_partition: int) -> set[str]: ...


class KafkaEventPublisher:
    """A transactional aiokafka producer for the incident-events topic: one transaction a batch,
    under ``transactional_id``, which every relay of a deployment shares (see the module
    docstring)."""

    def __init__(self, bootstrap: str, topic: str, transactional_id: str, timeout: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self.topic = topic
        self._transactional_id = transactional_id
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                enable_idempotence=True,
                transactional_id=self._transactional_id,
                # The relay hands over whole batches already; lingering for more records would
                # only add to every page's latency (5 ms of it at 200 alerts/s).
                linger_ms=0,
                request_timeout_ms=int(self._timeout * 1000),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def publish(self, records: Sequence[tuple[str, bytes]]) -> None:
        producer = await self._started()
        try:
            async with asyncio.timeout(self._timeout):
                await producer.begin_transaction()
                futures = [await producer.send(self.topic, key=k.encode(), value=v) for k, v in records]
                await asyncio.gather(*futures)
                await producer.commit_transaction()
        except BaseException:
            # Fenced, timed out or failed: this producer's transaction is abandoned (the next
            # producer with the id aborts it when it starts), and the next round starts anew.
            await self._discard()
            raise

    async def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await producer.stop()

    async def _high_watermarks(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's end, transactions not yet settled included (read_uncommitted)."""
        reader = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_uncommitted",
        )
        try:
            await reader.start()  # (inside: a failed start is closed too)
            return dict(await reader.end_offsets(list(tps)))
        finally:
            await reader.stop()

    async def recent_event_ids(self, per_partition: int) -> set[str]:
        """The event ids among the last ``per_partition`` records of every partition.

        Read up to each partition's high watermark, not its committed end as a read_committed
        consumer first sees it: a transaction's commit returns before its markers are written,
        and until then the last stable offset stops short of the batch just committed; read
        then, that batch would look unpublished and be sent again. Starting the producer
        (above) fenced and settled any transaction of a previous holder, so the committed end
        reaches the high watermark within moments; until it does (at most the timeout) the
        records are read as they settle."""
        producer = await self._started()
        partitions = await producer.partitions_for(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        found: set[str] = set()
        if not tps:
            return found
        ends = await self._high_watermarks(tps)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            # Started inside: a start that fails (Kafka down: the relay asks every round) must
            # close the consumer too, or each round leaves one behind.
            await consumer.start()
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > starts[tp]}
            for tp in pending:
                consumer.seek(tp, max(starts[tp], ends[tp] - per_partition))
            async with asyncio.timeout(self._timeout):
                while pending:
                    batch = await consumer.getmany(*pending, timeout_ms=500)
                    for messages in batch.values():
                        found.update(filter(None, (event_id_of(m.value) for m in messages)))
                    # By position, not by the last record read: a partition ends with the marker
                    # of its last transaction, which the consumer reads past but never returns.
                    for tp in list(pending):
                        if await consumer.position(tp) >= ends[tp]:
                            pending.discard(tp)
        finally:
            await consumer.stop()
        return found

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class OutboxRelay:
    """Moves events from the outbox table to Kafka, once each. ``outbox`` holds the relay's
    lease too."""

    def __init__(self, outbox: DriverOutbox, publisher: EventPublisher, batch_size: int = 500) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self.batch_size = batch_size
        self._recovered = False

    async def _unpublished(self) -> list[OutboxRow]:
        return await self._outbox.unpublished(self.batch_size)

    async def _mark(self, positions: list[int], now: datetime) -> None:
        await self._outbox.mark_published(positions, now)

    async def release(self) -> None:
        """Give the lease up (clean shutdown) when this relay holds it."""
        await self._outbox.release()
        self._recovered = False

    async def run_once(self, now: datetime) -> int:
        """Publish one batch; returns how many events were published (0 when not the holder)."""
        if not await self._outbox.acquire(now):
            self._recovered = False
            return 0
        rows = await self._unpublished()
        if not rows:
            self._recovered = True
            return 0
        if not self._recovered:
            present = await self._publisher.recent_event_ids(per_partition=2 * self.batch_size)
            already = [r.position for r in rows if r.event_id in present]
            if already:
                log.info(
                    "%d events were published before a restart; not sending them again", len(already)
                )
                await self._mark(already, now)
                rows = [r for r in rows if r.event_id not in present]
            self._recovered = True
        if not rows:
            return 0
        try:
            # (fitted: a document stored before events were bounded may be over Kafka's limit)
            documents = [(r.incident_id, fitted_document(r.document).encode()) for r in rows]
            await self._publisher.publish(documents)
            await self._mark([r.position for r in rows], now)
        except BaseException:
            # Kafka may hold the batch (a lost acknowledgement, a mark that failed after the
            # send): the next round reads the topic's tail before sending anything again.
            self._recovered = False
            raise
        return len(rows)
