"""The worker's quarantine: input records it can never apply, set aside so that the rest moves.

A poison record (it does not decode, or the store refuses it for good: see streams/failures.py)
is written with its reason and original bytes to the quarantine topic of its source
(``SEVFLOW_ALERTS_QUARANTINE_TOPIC``, ``SEVFLOW_COMMANDS_QUARANTINE_TOPIC``,
``SEVFLOW_PROBE_RESULTS_QUARANTINE_TOPIC``), counted in
``sevflow_records_quarantined_total{topic,reason}`` and logged at WARNING with its position and
reason only; its offset then moves on like any other. The write waits for Kafka's
acknowledgement, retried until it passes: a record leaves its partition only into the quarantine.

**The limit** (arroyo's ``DlqLimit``): more than ``SEVFLOW_WORKER_POISON_LIMIT`` poison records
in a row, with no record applied between them, is not poison but a broken deploy (a missing
migration makes every statement a ProgrammingError). The worker then quarantines nothing more and
exits with :data:`EXIT_POISONED` (``sevflow run`` stops, Kubernetes shows a crash loop); the
record that crossed the limit is not committed and is read again at the next start.

``sevflow dlq list --quarantine`` reads the topics (:func:`quarantine_list`); ``sevflow dlq
replay --quarantine`` sends each record back to its source topic, key and value byte for byte
(:func:`quarantine_replay`), once the cause is fixed. The pipeline is idempotent, so a replayed
record that was applied meanwhile changes nothing; one still poison is quarantined again.
"""

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from kafka_admin.reading import parsed, read_topics
from models.clock import Clock
from models.quarantine import QuarantinedRecord, SourcePosition
from models.settings import Settings

__all__ = [
    "EXIT_POISONED",
    "MemoryQuarantine",
    "PoisonLimit",
    "Quarantine",
    "QuarantineWriter",
    "TooMuchPoison",
    "quarantine_list",
    "quarantine_replay",
    "quarantine_topics",
]

log = logging.getLogger(__name__)

#: Exit status of a worker that met more poison in a row than the limit allows (EX_SOFTWARE).
EXIT_POISONED = 70
_KAFKA_RETRY_MAX_SECONDS = 30.0


class TooMuchPoison(Exception):
    """More consecutive poison records than the limit: stop rather than quarantine everything."""


class PoisonLimit:
    """Counts poison records in a row; ``limit`` 0 never stops."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    def applied(self) -> None:
        self.in_a_row = 0

    def poisoned(self, where: SourcePosition) -> None:
        """Count one more; raises :class:`TooMuchPoison` (without counting) past the limit."""
        if self.limit and self.in_a_row >= self.limit:
            raise TooMuchPoison(
                f"{self.in_a_row} poison records in a row, the next at {where}: more than "
                f"SEVFLOW_WORKER_POISON_LIMIT={self.limit} (a broken deploy or schema?)"
            )
        self.in_a_row += 1


class QuarantineWriter(Protocol):
    """Where quarantined records go; ``write`` returns once they are stored (acknowledged)."""

    async def write(self, topic: str, record: QuarantinedRecord) -> None: ...


class MemoryQuarantine:
    """Quarantined records kept in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, QuarantinedRecord]] = []

    async def write(self, topic: str, record: QuarantinedRecord) -> None:
        self.records.append((topic, record))


class Quarantine:
    """Sets poison records aside: counted against the limit, written, measured, logged."""

    def __init__(
        self,
        writer: QuarantineWriter,
        topics: dict[str, str],
        limit: PoisonLimit,
        clock: Clock,
        registry: CollectorRegistry,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        """``topics``: source topic → its quarantine topic."""
        self._writer = writer
        self._topics = topics
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self.quarantined = Counter(
            "sevflow_records_quarantined_total",
            "Input records the worker set aside as poison, by source topic and reason (the error "
            "class, or undecodable).",
            ["topic", "reason"],
            registry=registry,
        )

    def applied(self) -> None:
        """A record was applied: the poison run is broken."""
        self.limit.applied()

    async def put(
        self, where: SourcePosition, key: bytes | None, value: bytes | None, error: str, reason: str
    ) -> None:
        """Quarantine one record (raises :class:`TooMuchPoison` instead, past the limit)."""
        self.limit.poisoned(where)
        record = QuarantinedRecord.of(where, key, value, error, reason, self._clock())
        topic = self._topics[where.topic]
        delay = 0.2
        while True:
            try:
                await self._writer.write(topic, record)
                break
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "quarantining %s failed (%s); retrying in %.1fs", where, type(exc).__name__, delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, _KAFKA_RETRY_MAX_SECONDS)
        self.quarantined.labels(where.topic, error).inc()
        log.warning("quarantined poison record %s to %s: %s", where, topic, reason)


# --- reading and replaying (the CLI) ----------------------------------------------------------


def quarantine_topics(settings: Settings) -> dict[str, str]:
    """Source topic → quarantine topic."""
    return {
        settings.alerts_topic: settings.alerts_quarantine_topic,
        settings.commands_topic: settings.commands_quarantine_topic,
        settings.probe_results_topic: settings.probe_results_quarantine_topic,
    }


async def _read_all(settings: Settings, wait_seconds: float) -> list[QuarantinedRecord]:
    topics = sorted(set(quarantine_topics(settings).values()))
    read = await read_topics(settings.kafka_bootstrap, topics, wait_seconds)
    records = [
        record.model_copy(update={"quarantine_offset": r.offset})
        for r, record in parsed(read, QuarantinedRecord, "a quarantined record")
    ]
    return sorted(records, key=lambda r: r.quarantined_at)


def _matches(record: QuarantinedRecord, source: str | None) -> bool:
    return source is None or record.source.topic == source


async def quarantine_list_async(
    settings: Settings, *, source: str | None = None, limit: int = 100, wait_seconds: float = 30.0
) -> list[QuarantinedRecord]:
    records = [r for r in await _read_all(settings, wait_seconds) if _matches(r, source)]
    return records[-limit:]


def quarantine_list(
    settings: Settings, *, source: str | None = None, limit: int = 100, timeout: float = 30.0
) -> list[QuarantinedRecord]:
    """The newest ``limit`` quarantined records (optionally of one source topic), oldest first."""
    return asyncio.run(quarantine_list_async(settings, source=source, limit=limit, wait_seconds=timeout))


async def quarantine_replay_async(
    settings: Settings,
    *,
    source: str | None = None,
    offsets: Collection[str] | None = None,
    wait_seconds: float = 30.0,
) -> int:
    chosen = [
        r
        for r in await _read_all(settings, wait_seconds)
        if _matches(r, source) and (offsets is None or str(r.source) in offsets)
    ]
    for record in chosen:
        if not record.kept:
            log.warning(
                "not replaying %s: its bytes were too many to keep (%s)", record.source, record.reason
            )
    chosen = [r for r in chosen if r.kept]
    if not chosen:
        return 0
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        async with asyncio.timeout(wait_seconds):
            for record in chosen:
                await producer.send_and_wait(
                    record.source.topic, key=record.key_bytes(), value=record.value_bytes()
                )
    finally:
        await producer.stop()
    return len(chosen)


def quarantine_replay(
    settings: Settings,
    *,
    source: str | None = None,
    offsets: Collection[str] | None = None,
    timeout: float = 30.0,
) -> int:
    """Send quarantined records (all, of one source topic, or at these ``topic[p]@offset``
    positions) back to their source topic byte for byte; returns how many were sent."""
    return asyncio.run(
        quarantine_replay_async(settings, source=source, offsets=offsets, wait_seconds=timeout)
    )
