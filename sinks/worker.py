"""One sink's consumer: its own consumer group on the events topic, so a slow or failing sink
never delays another; and inside it, one incident's trouble never delays another incident.

::

    poll -> decode (poison -> dead letter, unknown type -> skip)
         -> storm detector (SEV3/SEV4 openings in a storm -> one digest)
         -> the delivery log of the incidents not in flight, read in one round trip
         -> each incident's events, in order, into that incident's lane (SEV1 first; the
            later events of a storm's members behind the storm's digest)
         -> poll again; commit each partition up to its oldest unfinished record

A lane runs one incident's events after the ones before them (an acknowledgement never overtakes
its trigger, a resolution never overtakes either), and lanes run side by side, ``concurrency``
at a time. An incident the vendor keeps refusing (a 5xx for its dedup_key alone) retries in its
lane until its retry deadline, then is dead-lettered as before; its later events wait behind it,
the other incidents' lanes go on. What holds the whole sink is the vendor's word or the evidence
that it is down: a throttled answer's ``Retry-After`` and the circuit breaker
(:mod:`sinks.breaker`).

Offsets are committed per partition only up to the oldest record not yet delivered,
dead-lettered or deliberately skipped (:class:`~sinks.offsets.PendingOffsets`): a held event is
never committed past, so a restart reads it again and delivers it; the records after it that
were delivered already are answered by the delivery log with no call. Too many open records
(``max_pending``) pause polling until lanes finish. Too many consecutive dead letters stop the
sink (:class:`SinkStopped`); records no version could read (not JSON, not an event) are not
counted: stopping cannot get past them, they stay on the topic, so the sink would stop again on
every restart. A lane that fails in a way no sink expected (a bug met by one event, a value the
store refuses) dead-letters its events instead of ending the sink's worker: the sinks process
would meet the same event again at every start, and deliver nothing else meanwhile.

With a :class:`~sinks.kafka.SinkConsumer`, a rebalance first lets the lanes in flight finish
(``drain_grace`` seconds at most: a call in flight is answered and recorded), cancels the rest
(held incidents, waiting for a retry), and commits what finished (:class:`~sinks.kafka.HandOver`):
the next owner of the partitions starts at the oldest record left unfinished. The same happens
when the worker is asked to stop. Commits name the events topic's incarnation, and a topic
deleted and created again is read anew from offset 0 (:mod:`sinks.incarnation`).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol, TypeVar

from aiokafka import TopicPartition
from sqlalchemy.exc import ProgrammingError

from models.events import IncidentEvent
from sinks.base import Failure, Sink
from sinks.clock import Clock
from sinks.dlq import DeadLetter, DeadLetters
from sinks.errors import SinkStopped
from sinks.kafka import COMMIT_WAIT, SinkConsumer, TopicWatch, commit_within
from sinks.letters import letter, poison_letter, unexpected
from sinks.offsets import PendingOffsets
from sinks.records import decode_shared
from sinks.retry import retry_store
from sinks.storm import StormDetector

__all__ = ["Consumer", "Record", "SinkWorker"]

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


class Consumer(Protocol):
    """What the worker uses of aiokafka's consumer (started, subscribed, auto-commit off)."""

    async def getmany(self, timeout_ms: int = ..., max_records: int | None = ...) -> Any: ...

    async def commit(self, offsets: Any = ...) -> None: ...

    def assignment(self) -> Any: ...


def _partition(record: Any) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


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
        max_pending: int = 10_000,
        drain_grace: float = 10.0,
        commit_wait: float = COMMIT_WAIT,
    ) -> None:
        self.sink = sink
        self._dead = dead_letters
        self._storm = storm
        self._clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._max_dead = max_consecutive_dead
        self._dead_streak = 0
        self._max_pending = max_pending
        self._drain_grace = drain_grace
        self._commit_wait = commit_wait
        #: Incident id -> the last task of its lane (later work of the incident starts after it).
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._offsets: PendingOffsets[TopicPartition] = PendingOffsets()
        self._failed: BaseException | None = None

    async def process(self, records: Sequence[Any]) -> None:
        """Handle ``records`` completely (delivered, dead-lettered or skipped): :meth:`dispatch`,
        then wait for every lane. Cancelled (or failed), it cancels the lanes it left running."""
        try:
            await self.dispatch(records)
            await self.settle()
        finally:
            if left := set(self._tasks):
                for task in left:
                    task.cancel()
                await asyncio.wait(left)

    async def settle(self) -> None:
        """Wait until no lane is running; raise the first failure of one (a bug, SinkStopped)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        self._raise_failed()

    async def dispatch(self, records: Sequence[Any]) -> None:
        """Start handling polled records: poison is dead-lettered here, each incident's events
        join the end of its lane. Returns without waiting for the deliveries."""
        events = await self._sort(records)
        where = {id(e): r for e, r in events}
        ordered = [e for e, _ in events]
        self._storm.observe(ordered)
        # Each digested opening goes to the storm current at its time, read when it is judged: a
        # poll that reaches past a storm's end (a backlog) ends that storm, and may start another.
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
        # The log of incidents in flight is not read: their lanes write it meanwhile, and a view
        # read now could miss those writes. Their events read the log when their turn comes.
        busy = {incident for incident, task in self._lanes.items() if not task.done()}
        fresh = [e for e in ordered if e.incident_id not in busy]
        if fresh:
            await self._store_retried("reading the delivery log", partial(self.sink.preload, fresh))
        self._start_lanes(queue, storms, where)

    async def _sort(self, records: Sequence[Any]) -> list[tuple[IncidentEvent, Any]]:
        """The events of ``records`` for this sink, with their records; poison is dead-lettered
        (and, like records meant for another sink, finished) here."""
        events: list[tuple[IncidentEvent, Any]] = []
        letters: list[DeadLetter] = []
        finished: list[Any] = []
        unreadable = 0
        for record in records:
            self._offsets.polled(_partition(record), record.offset)
            decoded = decode_shared(record.value, tuple(record.headers or ()))
            if decoded.poison is not None:
                if not decoded.newer:
                    unreadable += 1
                letters.append(
                    poison_letter(self.sink.name, record, decoded, decoded.poison, self._clock.now())
                )
                finished.append(record)
            elif decoded.event is not None and decoded.replay_for in (None, self.sink.name):
                events.append((decoded.event, record))
            else:
                finished.append(record)
        for poison in letters:
            await self._dead.write(poison)
        for record in finished:
            self._offsets.finished(_partition(record), record.offset)
        self._count_dead(len(letters) - unreadable, len(finished) - unreadable)
        return events

    def _start_lanes(
        self,
        queue: list[list[IncidentEvent]],
        storms: dict[tuple[str, datetime], list[IncidentEvent]],
        where: dict[int, Any],
    ) -> None:
        """Start each incident's events as the end of its lane, SEV1 first, and each storm's
        digest. A digested opening is its incident's first event: the incident's later events in
        this poll (a resolution) go after the digest, which records the members they settle;
        their lanes chain behind the digest's. The other incidents start first."""
        members = {e.incident_id for digested in storms.values() for e in digested}

        def start_groups(digested: bool) -> None:
            for group in queue:
                incident = group[0].incident_id
                if (incident in members) is digested:
                    self._start([incident], group, where, incident,
                                partial(self.sink.handle, group))  # fmt: skip

        start_groups(digested=False)
        for (storm_id, started_at), digested in storms.items():
            self._start(
                sorted({e.incident_id for e in digested}),
                digested,
                where,
                "storm digest",
                partial(self.sink.digest, storm_id, started_at, digested),
            )
        start_groups(digested=True)

    def _start(
        self,
        incidents: list[str],
        events: Sequence[IncidentEvent],
        where: dict[int, Any],
        what: str,
        work: Callable[[], Awaitable[list[Failure]]],
    ) -> None:
        """Run ``work`` (on ``events``, whose records ``where`` has) after the lanes of
        ``incidents``, as their new end."""
        before = {self._lanes[i] for i in incidents if i in self._lanes and not self._lanes[i].done()}
        records = {id(e): where[id(e)] for e in events}
        task = asyncio.create_task(self._lane(before, events, records, what, work))
        for incident in incidents:
            self._lanes[incident] = task
        self._tasks.add(task)
        task.add_done_callback(partial(self._ended, incidents))

    def _ended(self, incidents: list[str], task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        for incident in incidents:
            if self._lanes.get(incident) is task:
                del self._lanes[incident]
        if not task.cancelled() and (exc := task.exception()) is not None and self._failed is None:
            self._failed = exc

    async def _lane(
        self,
        before: set[asyncio.Task[None]],
        events: Sequence[IncidentEvent],
        records: dict[int, Any],
        what: str,
        work: Callable[[], Awaitable[list[Failure]]],
    ) -> None:
        if before:
            await asyncio.wait(before)
        async with self._limit:
            try:
                failures = await self._store_retried(what, work)
            except (SinkStopped, ProgrammingError):
                raise  # a broken deploy (a table missing, a statement the store refuses as wrong)
            except Exception as exc:  # noqa: BLE001 (what no sink expected: sinks.letters.unexpected)
                failures = unexpected(self.sink.name, what, events, exc)
        for failure in failures:
            log.error(
                "%s: dead-lettering %s of %s: %s",
                self.sink.name,
                failure.event.type,
                failure.event.incident_id,
                failure.error.reason,
            )
            record = records[id(failure.event)]
            error, now = failure.error, self._clock.now()
            reason, retryable = error.reason, error.retryable
            written = letter(self.sink.name, record, reason, retryable, failure.event, None, now)
            await self._dead.write(written)
        for record in records.values():
            self._offsets.finished(_partition(record), record.offset)
        self._count_dead(len(failures), len(records))

    def _raise_failed(self) -> None:
        if self._failed is not None:
            raise self._failed

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

    async def _commit(self, consumer: Consumer) -> None:
        """Commit each partition up to its oldest unfinished record, where that moved."""
        offsets = self._offsets.to_commit()
        if not offsets:
            return
        # Each commit names the topic's incarnation it was made in (sinks/incarnation.py).
        known = consumer.incarnation.known if isinstance(consumer, SinkConsumer) else None
        made = {tp: (offset, known) for tp, offset in offsets.items()} if known else offsets
        if await commit_within(consumer.commit(made), self._commit_wait, self.sink.name):
            self._offsets.committed(offsets)

    async def _drain(self, consumer: Consumer, *, commit: bool = True) -> None:
        """Let the lanes in flight finish (``drain_grace`` at most), cancel the others, commit
        what finished (unless not to ``commit``) and forget the partitions' state: their next
        owner, or this worker after a restart, starts at the oldest record left unfinished."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._drain_grace)
            if pending:
                log.warning(
                    "%s: %d deliveries still waiting (held incidents) are left to the partitions' "
                    "next owner",
                    self.sink.name,
                    len(pending),
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        if commit:
            await self._commit(consumer)
        self._offsets.clear()
        self._lanes.clear()

    async def run(
        self,
        consumer: Consumer,
        stop: asyncio.Event,
        *,
        max_records: int = 500,
    ) -> None:
        """Poll, dispatch, commit until ``stop`` is set. The consumer must be started."""
        hand_over = consumer.hand_over if isinstance(consumer, SinkConsumer) else None
        # Held while a poll is dispatched and committed; a revocation takes it to drain.
        lock = hand_over.batch if hand_over is not None else asyncio.Lock()
        if hand_over is not None:
            hand_over.drain = partial(self._drain, consumer)
        watch = TopicWatch(consumer) if isinstance(consumer, SinkConsumer) else None
        incarnation = consumer.incarnation if isinstance(consumer, SinkConsumer) else None
        ids = (
            asyncio.create_task(incarnation.watch(), name=f"sink-{self.sink.name}-topic-id")
            if incarnation is not None
            else None
        )
        try:
            while not stop.is_set():
                self._raise_failed()
                if watch is not None:
                    watch.check()
                if incarnation is not None and incarnation.changed():
                    async with lock:  # (the topic deleted and created again: sinks/incarnation.py)
                        await self._drain(consumer, commit=False)
                        incarnation.read_anew(consumer, self.sink.name)
                if len(self._offsets) >= self._max_pending and self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=0.2, return_when="FIRST_COMPLETED")
                    async with lock:
                        await self._commit(consumer)
                    continue
                mark = incarnation.mark() if incarnation is not None else 0
                batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
                async with lock:
                    # A poll returned just before a revocation is not ours any more, nor one
                    # from positions an assignment has since sent back to offset 0.
                    assigned = consumer.assignment()
                    if incarnation is not None:
                        polled = assigned & batch.keys()
                        assigned = assigned - incarnation.stale_polls(consumer, mark, polled)
                    records = [r for tp, got in batch.items() if tp in assigned for r in got]
                    if records:
                        await self.dispatch(records)
                    await self._commit(consumer)
            async with lock:
                await self._drain(consumer)
            self._raise_failed()
        finally:
            if ids is not None:
                ids.cancel()
            if hand_over is not None:
                hand_over.drain = None
            for task in list(self._tasks):
                task.cancel()
