"""What the worker's agents and timers do, one method each (:class:`WorkerSteps`); streams/app.py
registers them with faust. Each step decodes, hands the records to the pipeline
(streams/pipeline.py), retries what is transient, quarantines what is poison and wakes the relay
when events were committed; the timers run in record time (streams/record_time.py).
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import faust
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from kafka_admin.topics import ensure_topics
from models.alert import AlertRecord, RecordPosition
from models.clock import Clock
from models.events import IncidentEvent
from models.quarantine import QuarantinedRecord, SourcePosition
from models.settings import Settings
from streams.escalation import EscalationMetrics, run_escalations
from streams.failures import RETRIED, isolate, reason_of, retry_transient
from streams.memory import MemoryReturn
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.quarantine import Quarantine
from streams.record_time import RecordTime
from streams.records import Decoded, decode_alert, decode_command
from streams.relay_process import RelayProcess
from streams.stall import Activity, StallWatch

__all__ = ["MEASURE_SECONDS", "TopicWriter", "WorkerSteps"]

log = logging.getLogger(__name__)

#: How often the consumer lag is measured (the metrics timer), and how old a measurement may be
#: for the timers' watermark (streams/record_time.py): three missed measurements, no watermark.
MEASURE_SECONDS = 10.0
WATERMARK_MAX_AGE = timedelta(seconds=3 * MEASURE_SECONDS)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


class TopicWriter:
    """Quarantine writes through the worker's own producer. Each quarantine topic is created (and
    checked) once, as every sevflow topic is, by :func:`kafka_admin.topics.ensure_topics`."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._topics: dict[str, Any] = {}

    async def write(self, topic: str, record: QuarantinedRecord) -> None:
        channel = self._topics.get(topic)
        if channel is None:
            settings = self._settings
            spec = settings.topic_spec(topic)
            await ensure_topics(settings.kafka_bootstrap, [spec], settings.kafka_timeout_seconds)
            channel = self._app.topic(
                topic, key_serializer="raw", value_serializer="raw", partitions=spec.partitions
            )
            self._topics[topic] = channel
        sent = await channel.send(key=record.kafka_key(), value=record.to_bytes())
        await sent  # Kafka's acknowledgement


def _source(event: Any) -> SourcePosition:
    message = event.message
    return SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)


class WorkerSteps:
    """What the agents and the timers do, one method each: decode, hand to the pipeline, retry
    what is transient, quarantine what is poison, wake the relay when events were committed."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        relay: RelayProcess,
        lag: LagProbe,
        quarantine: Quarantine,
        clock: Clock,
        stats: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.relay = relay
        self.lag = lag
        self.quarantine = quarantine
        self.clock = clock
        self.stats = stats
        self.activity = Activity()
        self.record_time = RecordTime(pipeline.store, max_age=WATERMARK_MAX_AGE)
        self.escalation_metrics = EscalationMetrics(stats.registry)
        self.memory = MemoryReturn()
        seconds = settings.worker_stall_seconds
        self.stall = StallWatch(seconds) if seconds else None

    async def refuse(self, event: Any, decoded: Decoded[Any]) -> None:
        """A record no version of this worker can apply: counted, then quarantined (the
        quarantine logs it, with where it was read and why)."""
        reason = "newer_schema" if decoded.newer else "invalid"
        self.stats.records_refused.labels(event.message.topic, reason).inc()
        error = "newer_schema" if decoded.newer else "undecodable"
        await self.quarantine.put(
            _source(event), event.key, event.value, error, decoded.refused or error
        )

    async def apply_alerts(self, part: Sequence[tuple[Any, AlertRecord]]) -> list[IncidentEvent]:
        records = [record for _, record in part]
        positions = [RecordPosition(e.message.partition, e.message.offset) for e, _ in part]
        created = await retry_transient(
            f"applying {len(records)} alerts",
            partial(self.pipeline.process_alerts, records, positions, applied_at=self.clock()),
        )
        self.quarantine.applied()
        self.stats.alerts_processed.inc(len(records))
        committed, observe = self.clock(), self.stats.alert_delay.observe
        for record in records:
            observe(max((committed - record.received_at).total_seconds(), 0.0))
        return created

    async def poisoned(self, item: tuple[Any, AlertRecord], exc: BaseException) -> None:
        event, _ = item
        await self.quarantine.put(
            _source(event), event.key, event.value, type(exc).__name__, reason_of(exc)
        )

    async def alert_batch(self, events: Sequence[Any]) -> None:
        items: list[tuple[Any, AlertRecord]] = []
        for event in events:
            decoded = decode_alert(event.value)
            if decoded.record is None:
                await self.refuse(event, decoded)
            else:
                items.append((event, decoded.record))
        if not items:  # (poison alone is progress too: its offsets move on)
            self.activity.batches += 1
            return
        with self.activity.applying():
            created = await isolate(items, self.apply_alerts, self.poisoned)
        if created:
            self.relay.wake()
        for event in created:
            self.stats.events_created.labels(event.type.value).inc()
        self.escalation_metrics.count(created)
        self.memory.after_batch()

    async def command_event(self, event: Any) -> None:
        decoded = decode_command(event.value)
        command = decoded.record
        if command is None:
            await self.refuse(event, decoded)
            return
        with self.activity.applying():
            try:
                result = await retry_transient(
                    f"command {command.command_id}", partial(self.pipeline.process_command, command)
                )
            except RETRIED as exc:  # (retry_transient raises only the permanent ones)
                await self.quarantine.put(
                    _source(event), event.key, event.value, type(exc).__name__, reason_of(exc)
                )
                return
        self.quarantine.applied()
        self.relay.wake()
        log.info(
            "command %s %s %s: %s",
            command.command_id,
            command.action,
            command.incident_id,
            result.reason,
        )

    async def release_windows(self) -> None:
        try:
            # In record time: a window is released once every record received before its end is
            # applied (a held alert's resolution still in the backlog must not be outrun).
            at = await self.record_time.watermark(self.clock())
            if at is not None and await self.pipeline.release_windows(at):
                self.relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("maintenance-window release failed: %s", reason_of(exc))

    async def measure(
        self, assignment: Callable[[], set[tuple[str, int]]], on_stall: Callable[[float], None]
    ) -> None:
        """Lag (also the watermark's idle partitions), outbox backlog, heartbeat, stall watch."""
        self.stats.heartbeat.set_to_current_time()
        started = self.clock()  # before the measurement: what it finds applied was applied by then
        try:
            behind = await self.lag.update(self.stats)
        except (KafkaError, OSError, TimeoutError) as exc:
            self.record_time.forget()
            log.debug("lag not measured this time: %s: %s", type(exc).__name__, exc)
            return
        topic = self.settings.alerts_topic
        self.record_time.observe({p: n for (t, p), n in behind.items() if t == topic}, started)
        try:
            await self.stats.measure_backlog(self.pipeline.store.engine)
        except (SQLAlchemyError, OSError) as exc:
            log.debug("outbox backlog not measured this time: %s: %s", type(exc).__name__, exc)
        if self.stall is not None:
            waited = self.stall.observe(loop_time(), behind, assignment(), self.activity)
            if waited is not None:
                on_stall(waited)

    async def expire_quiet(self) -> None:
        try:
            # In record time, never the wall clock: after an outage or a restart with lag, the
            # renewed firing of a quiet incident may still wait in the backlog.
            at = await self.record_time.watermark(self.clock())
            if at is not None and await self.pipeline.expire_quiet(at):
                self.relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("quiet-period check failed: %s", reason_of(exc))

    async def escalate(self) -> None:
        assert self.pipeline.escalation is not None  # (create_app refuses a pipeline without)
        try:
            escalated = await run_escalations(
                self.pipeline.store,
                self.pipeline.escalation,
                self.clock(),
                limit=self.settings.escalation_batch_size,
                metrics=self.escalation_metrics,
            )
            if escalated:
                self.relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("escalation run failed: %s", reason_of(exc))
