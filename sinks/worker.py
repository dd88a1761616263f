"""One sink's consumer: its own consumer group on the events topic, so a slow or failing sink
never delays another.

::

    poll batch -> decode (poison -> dead letter, unknown type -> skip)
               -> storm detector (SEV3/SEV4 openings in a storm -> one digest)
               -> the batch's delivery log, read in one round trip
               -> incidents in parallel, SEV1 first, each incident's events in order -> sink
               -> the storm digests, then the later events of the incidents they summarised
               -> failures -> dead-letter topic (acknowledged)
               -> commit the batch's offsets

Offsets are committed only after every record of the batch was delivered, dead-lettered or
deliberately skipped; a crash before that redelivers the batch, and the delivery log turns the
repeat into no calls. Too many consecutive dead letters stop the sink (:class:`SinkStopped`);
records no version could read (not JSON, not an event) are not counted: stopping cannot get past
them, they stay on the topic, so the sink would stop again on every restart.

With a :class:`~sinks.kafka.SinkConsumer`, a rebalance waits for the batch in flight and its
commit (:class:`~sinks.kafka.HandOver`): the next owner of its partitions starts after it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError

from models.events import IncidentEvent
from sinks.base import Failure, Sink
from sinks.clock import Clock
from sinks.dlq import DeadLetter, DeadLetters, SourcePosition
from sinks.errors import SinkStopped
from sinks.kafka import SinkConsumer
from sinks.records import decode
from sinks.retry import retry_store
from sinks.storm import StormDetector

__all__ = ["Record", "SinkWorker"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka record the worker reads (aiokafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


class SinkWorker:
    def __init__(
        self,
        sink: Sink,
        *,
        dead_letters: DeadLetters,
        storm: StormDetector,
        clock: Clock,
        concurrency: int,
        max_consecutive_dead: int,
    ) -> None:
        self.sink = sink
        self._dead = dead_letters
        self._storm = storm
        self._clock = clock
        self._concurrency = concurrency
        self._max_dead = max_consecutive_dead
        self._dead_streak = 0

    async def process(self, records: Sequence[Any]) -> None:
        """Handle one polled batch completely (delivered, dead-lettered or skipped)."""
        events: list[tuple[IncidentEvent, Any]] = []
        letters: list[DeadLetter] = []
        unreadable = 0
        for record in records:
            decoded = decode(record.value, tuple(record.headers or ()))
            if decoded.poison is not None:
                if not decoded.newer:
                    unreadable += 1
                log.error(
                    "%s: dead-lettering the record at %s/%d@%d: %s",
                    self.sink.name,
                    record.topic,
                    record.partition,
                    record.offset,
                    decoded.poison,
                )
                raw = (record.value or b"")[:4096].decode(errors="replace")
                letter = self._letter(record, decoded.poison, False, None, raw)
                if decoded.incident_id is not None or decoded.event_id is not None:
                    letter = letter.model_copy(
                        update={"incident_id": decoded.incident_id, "event_id": decoded.event_id}
                    )
                letters.append(letter)
            elif decoded.event is not None and decoded.replay_for in (None, self.sink.name):
                events.append((decoded.event, record))
        where = {id(e): r for e, r in events}
        ordered = [e for e, _ in events]
        self._storm.observe(ordered)
        # Each digested opening goes to the storm current at its time, read when it is judged: a
        # batch that reaches past a storm's end (a backlog) ends that storm, and may start another.
        storms: dict[tuple[str, datetime], list[IncidentEvent]] = {}
        for event in ordered:
            if self._storm.digests(event):
                assert self._storm.started_at is not None  # digests() is true only in a storm
                key = (self._storm.storm_id, self._storm.started_at)
                storms.setdefault(key, []).append(event)
        skip = {id(e) for digested in storms.values() for e in digested}
        groups: dict[str, list[IncidentEvent]] = {}
        for event in ordered:
            if id(event) not in skip:
                groups.setdefault(event.incident_id, []).append(event)
        queue = sorted(groups.values(), key=lambda g: min(e.incident.severity.rank for e in g))
        if ordered:
            await self._store_retried("reading the delivery log", partial(self.sink.preload, ordered))
        limit = asyncio.Semaphore(self._concurrency)

        async def deliver(group: list[IncidentEvent]) -> list[Failure]:
            async with limit:
                return await self._store_retried(group[0].incident_id, partial(self.sink.handle, group))

        # An incident's events go out in order, and a digested opening is its incident's first:
        # its later events in this batch (a resolution) wait for the digest, which records the
        # members they settle. The other incidents go first, SEV1 ahead of the digest.
        members = {e.incident_id for digested in storms.values() for e in digested}
        after = [g for g in queue if g[0].incident_id in members]
        first = [g for g in queue if g[0].incident_id not in members]
        failures = [f for result in await asyncio.gather(*map(deliver, first)) for f in result]
        for (storm_id, started_at), digested in storms.items():
            digest = partial(self.sink.digest, storm_id, started_at, digested)
            failures += await self._store_retried("storm digest", digest)
        failures += [f for result in await asyncio.gather(*map(deliver, after)) for f in result]
        for failure in failures:
            log.error(
                "%s: dead-lettering %s of %s: %s",
                self.sink.name,
                failure.event.type,
                failure.event.incident_id,
                failure.error.reason,
            )
            record = where[id(failure.event)]
            letters.append(
                self._letter(record, failure.error.reason, failure.error.retryable, failure.event, None)
            )
        for letter in letters:
            await self._dead.write(letter)
        self._count_dead(len(letters) - unreadable, len(records) - unreadable)

    async def _store_retried(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """``step`` run again while the store fails transiently (:func:`sinks.retry.retry_store`):
        every step of a sink reads or writes its delivery log."""
        return await retry_store(step, clock=self._clock, what=f"{self.sink.name}: {what}")

    def _count_dead(self, dead: int, total: int) -> None:
        if dead and dead == total:
            self._dead_streak += dead
        elif dead < total:
            self._dead_streak = 0
        if self._dead_streak >= self._max_dead:
            raise SinkStopped(
                f"{self.sink.name}: {self._dead_streak} consecutive events dead-lettered; stopping "
                "(replay them with sevflow dlq replay once the cause is fixed)"
            )

    def _letter(
        self, record: Any, reason: str, retryable: bool, event: IncidentEvent | None, raw: str | None
    ) -> DeadLetter:
        return DeadLetter(
            sink=self.sink.name,
            reason=reason,
            retryable=retryable,
            failed_at=self._clock.now(),
            source=SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset),
            incident_id=event.incident_id if event else None,
            event_id=str(event.event_id) if event else None,
            event=event,
            raw=raw,
        )

    async def run(
        self,
        consumer: AIOKafkaConsumer,
        stop: asyncio.Event,
        *,
        max_records: int = 500,
    ) -> None:
        """Poll, process, commit until ``stop`` is set. The consumer must be started."""
        # Taken as soon as a batch is returned (no await in between), released after its commit.
        batch_lock = consumer.hand_over.batch if isinstance(consumer, SinkConsumer) else asyncio.Lock()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            if not batch:
                continue
            async with batch_lock:
                records = [r for messages in batch.values() for r in messages]
                await self.process(records)
                offsets = {tp: messages[-1].offset + 1 for tp, messages in batch.items()}
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, KafkaError) as exc:
                    # The group moved on without us (a session or rebalance timeout ran out):
                    # the next owner redelivers, the log dedups.
                    log.warning(
                        "%s: commit failed (%s); records will be redelivered", self.sink.name, exc
                    )
