"""The faust application: built from :class:`Settings`, never at import time.

Agents are thin adapters: they decode records, hand batches to :class:`streams.pipeline.Pipeline`
and leave every rule to ``models``. The worker runs ``at_least_once`` (faust's exactly_once has
open duplicate and fencing bugs) and every step is idempotent, so a redelivered record changes
nothing. Per-event errors are handled inside the agents: an exception escaping an agent can skip
that event's offset on restart (faust issue #315). Transient database errors are retried until
they pass, so an offset is never committed past an unapplied record; a poison record (it does not
decode, or the store refuses it for good) is isolated from its batch and quarantined with its
reason (streams/failures.py, streams/quarantine.py), so the rest of the partition moves on.

* ``alerts``: alerts topic → pipeline (classify, dedup, group, persist + outbox), in batches;
* ``commands``: commands topic → acknowledge / resolve;
* the outbox relay: outbox → ``incident-events`` (one worker at a time, by lease), in a process
  of its own that the worker starts (streams/relay_process.py), woken as soon as the agents
  commit new events, and every 0.2 s for what other workers or the timers stored;
* timer ``maintenance``: applies again the still-firing alerts a maintenance window held, once
  record time (the watermark of the records applied, streams/record_time.py) has passed its end;
* timer ``quiet``: resolves incidents whose alerts stayed resolved for the quiet period, in record
  time (no lag measurement for 30 s, as with Kafka unreachable: nothing expires);
* timer ``metrics``: consumer lag (also the watermark's idle partitions), outbox backlog,
  heartbeat; and the stall watch
  (streams/stall.py): records waiting on this worker's partitions while its agents idle make the
  worker exit to be started again (faust's consumer can stop fetching after a broker outage);
* timer ``escalations``: pages the next escalation level of unacknowledged incidents and records
  SLA breaches (streams/escalation.py: the incident lock plus a compare-and-set make each level
  fire once, whichever worker runs it).
"""

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import faust
import mode
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from kafka_admin.topics import ensure_topics
from models.alert import AlertRecord, RecordPosition
from models.clock import Clock, utc_now
from models.events import IncidentEvent
from models.quarantine import QuarantinedRecord, SourcePosition
from models.settings import Settings
from streams.escalation import EscalationMetrics, run_escalations
from streams.failures import RETRIED, isolate, reason_of, retry_transient
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.quarantine import EXIT_POISONED, PoisonLimit, Quarantine, TooMuchPoison
from streams.record_time import RecordTime
from streams.records import Decoded, decode_alert, decode_command
from streams.relay_process import RelayProcess
from streams.stall import EXIT_STALLED, Activity, StallWatch

__all__ = ["WorkerSteps", "broker_urls", "create_app", "retry_transient"]

log = logging.getLogger(__name__)

#: How long a stopping worker waits for its relay process to publish what is left and exit.
RELAY_STOP_SECONDS = 10.0
#: How often the worker checks that its relay process runs.
RELAY_WATCH_SECONDS = 1.0
#: How often the consumer lag is measured (the metrics timer), and how old a measurement may be
#: for the timers' watermark (streams/record_time.py): three missed measurements, no watermark.
MEASURE_SECONDS = 10.0
WATERMARK_MAX_AGE = timedelta(seconds=3 * MEASURE_SECONDS)


def _exit_stalled(waited: float) -> None:
    """Leave at once: a stalled consumer may not stop cleanly either, and nothing uncommitted is
    lost (see streams/stall.py)."""
    log.error(
        "no record delivered for %.0fs while records wait on this worker's partitions (faust's "
        "consumer stalled, as after a broker outage); exiting with status %d to be started again",
        waited,
        EXIT_STALLED,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STALLED)


def broker_urls(bootstrap: str) -> list[str]:
    """faust's broker URLs from a comma-separated bootstrap list."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def _exit_poisoned(problem: TooMuchPoison) -> None:
    """Leave at once, without committing the record that crossed the limit (streams/quarantine.py)."""
    log.error("%s; exiting with status %d", problem, EXIT_POISONED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_POISONED)


class _TopicWriter:
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
        sent = await channel.send(key=record.key_bytes(), value=record.to_bytes())
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
        seconds = settings.worker_stall_seconds
        self.stall = StallWatch(seconds) if seconds else None

    async def refuse(self, event: Any, decoded: Decoded[Any]) -> None:
        """A record no version of this worker can apply: counted, then quarantined (the
        quarantine logs it, with where it was read and why)."""
        message = event.message
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        reason = "newer_schema" if decoded.newer else "invalid"
        self.stats.records_refused.labels(where, reason).inc()
        error = "newer_schema" if decoded.newer else "undecodable"
        await self.quarantine.put(
            _source(event), event.key, event.value, error, decoded.refused or error
        )

    async def apply_alerts(self, part: Sequence[tuple[Any, AlertRecord]]) -> list[IncidentEvent]:
        records = [record for _, record in part]
        positions = [RecordPosition(e.message.partition, e.message.offset) for e, _ in part]
        created = await retry_transient(
            f"applying {len(records)} alerts",
            partial(self.pipeline.process_alerts, records, positions),
        )
        self.quarantine.applied()
        self.stats.alerts_processed.inc(len(records))
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


def _faust_app(settings: Settings, overrides: dict[str, Any]) -> faust.App:
    # faust's own topics (table changelogs) get the replicas of sevflow's topics when set; faust
    # cannot ask for the cluster's default (-1) and keeps its 1 then.
    replication: dict[str, Any] = {}
    if settings.topic_replication_factor > 0:
        replication["topic_replication_factor"] = settings.topic_replication_factor
    return faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.topic_partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # A killed worker releases its partitions after 10 s instead of faust's 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_commit_interval=1.0,
        **{**replication, **overrides},
    )


def _resources(steps: WorkerSteps) -> type[mode.Service]:
    """The service that runs the outbox relay's process and closes what the agents and timers
    share when the worker stops."""
    relay, lag, engine = steps.relay, steps.lag, steps.pipeline.store.engine

    class _Resources(mode.Service):
        async def on_start(self) -> None:
            relay.start()

        @mode.Service.task
        async def _watch_relay(self) -> None:
            while not self.should_stop:
                await self.sleep(RELAY_WATCH_SECONDS)
                if not self.should_stop and (status := relay.exited()) is not None:
                    log.error("outbox relay process exited with status %s; starting it again", status)
                    await relay.restart()

        async def on_shutdown(self) -> None:
            # The relay publishes what the agents committed, then gives its lease up, so another
            # worker relays at once (kept, the lease held every event back until its expiry).
            await relay.stop(RELAY_STOP_SECONDS)
            await lag.close()
            await engine.dispose()

    return _Resources


def _agents(
    app: faust.App, steps: WorkerSteps, on_poison_limit: Callable[[TooMuchPoison], None]
) -> None:
    settings = steps.settings
    raw: dict[str, Any] = {
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": settings.topic_partitions,
    }

    @app.agent(app.topic(settings.alerts_topic, **raw), name="alerts")
    async def process_alerts(stream: faust.StreamT[bytes]) -> None:
        window = settings.batch_window_seconds
        async for events in stream.take_events(settings.batch_size, within=window):  # type: ignore[attr-defined]
            try:
                await steps.alert_batch(events)
            except TooMuchPoison as exc:
                on_poison_limit(exc)
                return

    @app.agent(app.topic(settings.commands_topic, **raw), name="commands")
    async def process_commands(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await steps.command_event(event)
            except TooMuchPoison as exc:
                on_poison_limit(exc)
                return


def _timers(app: faust.App, steps: WorkerSteps, on_stall: Callable[[float], None]) -> None:
    def assignment() -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in app.consumer.assignment()}

    @app.timer(interval=2.0, name="maintenance")  # type: ignore[untyped-decorator]
    async def release_maintenance_windows() -> None:
        await steps.release_windows()

    @app.timer(interval=MEASURE_SECONDS, name="metrics")  # type: ignore[untyped-decorator]
    async def measure() -> None:
        await steps.measure(assignment, on_stall)

    @app.timer(interval=1.0, name="quiet")  # type: ignore[untyped-decorator]
    async def expire_quiet_periods() -> None:
        await steps.expire_quiet()

    @app.timer(interval=steps.settings.escalation_interval_seconds, name="escalations")  # type: ignore[untyped-decorator]
    async def escalate() -> None:
        await steps.escalate()


def create_app(
    settings: Settings,
    pipeline: Pipeline,
    relay: RelayProcess,
    lag: LagProbe,
    *,
    clock: Clock = utc_now,
    metrics: WorkerMetrics | None = None,
    on_stall: Callable[[float], None] = _exit_stalled,
    on_poison_limit: Callable[[TooMuchPoison], None] = _exit_poisoned,
    **overrides: Any,
) -> faust.App:
    """The faust app around a built ``pipeline`` (sevflow/roles/worker.py builds it, its store,
    the relay process and the lag probe): its agents, its timers and the service that runs the
    relay; ``overrides`` are extra faust settings (tests use them)."""
    if pipeline.escalation is None:
        raise ValueError("the worker's pipeline needs its escalation policy (the escalations timer)")
    stats = metrics or WorkerMetrics()
    app = _faust_app(settings, overrides)
    quarantine = Quarantine(
        _TopicWriter(app, settings),
        {
            settings.alerts_topic: settings.alerts_quarantine_topic,
            settings.commands_topic: settings.commands_quarantine_topic,
        },
        PoisonLimit(settings.worker_poison_limit),
        clock,
        stats.registry,
    )
    steps = WorkerSteps(settings, pipeline, relay, lag, quarantine, clock, stats)
    app.service(_resources(steps))
    _agents(app, steps, on_poison_limit)
    _timers(app, steps, on_stall)
    return app
