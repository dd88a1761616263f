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

from models.alert import AlertRecord, RecordPosition
from models.clock import Clock, utc_now
from models.events import IncidentEvent
from models.quarantine import QuarantinedRecord, SourcePosition
from models.settings import Settings
from models.teams import Teams
from store.db import async_engine
from store.incidents import IncidentStore
from streams.escalation import EscalationMetrics, load_policy, run_escalations
from streams.failures import RETRIED, isolate, reason_of, retry_transient
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.quarantine import EXIT_POISONED, PoisonLimit, Quarantine, TooMuchPoison
from streams.record_time import RecordTime
from streams.records import Decoded, decode_alert, decode_command
from streams.relay_process import RelayProcess
from streams.rules import load_rules
from streams.runbooks import load_runbooks
from streams.stall import EXIT_STALLED, Activity, StallWatch

__all__ = ["broker_urls", "create_app", "retry_transient"]

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


def _refuse(decoded: Decoded[Any], topic: str, stats: WorkerMetrics) -> None:
    """Count a record the worker can never apply (streams/records.py says which); the quarantine
    logs it, with where it was read and why."""
    reason = "newer_schema" if decoded.newer else "invalid"
    stats.records_refused.labels(topic, reason).inc()


class _TopicWriter:
    """Quarantine writes through the worker's own producer, on topics it declares once."""

    def __init__(self, app: faust.App, partitions: int) -> None:
        self._app = app
        self._partitions = partitions
        self._topics: dict[str, Any] = {}

    async def write(self, topic: str, record: QuarantinedRecord) -> None:
        channel = self._topics.get(topic)
        if channel is None:
            channel = self._app.topic(
                topic, key_serializer="raw", value_serializer="raw", partitions=self._partitions
            )
            await channel.maybe_declare()
            self._topics[topic] = channel
        sent = await channel.send(key=record.key_bytes(), value=record.to_bytes())
        await sent  # Kafka's acknowledgement


def _source(event: Any) -> SourcePosition:
    message = event.message
    return SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    metrics: WorkerMetrics | None = None,
    on_stall: Callable[[float], None] = _exit_stalled,
    on_poison_limit: Callable[[TooMuchPoison], None] = _exit_poisoned,
    teams: Teams | None = None,
    **overrides: Any,
) -> faust.App:
    """Build the stream application; ``overrides`` are extra faust settings (tests use them)."""
    stats = metrics or WorkerMetrics()
    # faust's own topics (table changelogs) get the replicas of sevflow's topics when set; faust
    # cannot ask for the cluster's default (-1) and keeps its 1 then.
    replication: dict[str, Any] = {}
    if settings.topic_replication_factor > 0:
        replication["topic_replication_factor"] = settings.topic_replication_factor
    app = faust.App(
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
    raw: dict[str, Any] = {
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": settings.topic_partitions,
    }
    alerts_topic = app.topic(settings.alerts_topic, **raw)
    commands_topic = app.topic(settings.commands_topic, **raw)

    engine = async_engine(settings.sqlalchemy_url())
    store = IncidentStore(engine)
    escalation_policy = load_policy(  # bad policy: fail at start
        settings.escalation_policy_file,
        settings.playbook_times(),
        emailing=settings.email_configured(),
    )
    pipeline = Pipeline(
        store,
        load_rules(settings.rules_file),
        settings.lifecycle_policy(),
        settings.group_by,
        escalation_policy,
        load_runbooks(
            settings.runbooks_dir, settings.runbooks_url
        ),  # a bad runbook: fail at start, naming its line
        teams,  # loaded and checked at start by the caller (sevflow/teams.py)
    )
    escalation_metrics = EscalationMetrics(stats.registry)
    lag = LagProbe(
        settings.kafka_bootstrap, settings.app_id, [settings.alerts_topic, settings.commands_topic]
    )
    record_time = RecordTime(store, max_age=WATERMARK_MAX_AGE)
    relay = RelayProcess(on_published=stats.events_published.inc)
    activity = Activity()
    quarantine = Quarantine(
        _TopicWriter(app, settings.topic_partitions),
        {
            settings.alerts_topic: settings.alerts_quarantine_topic,
            settings.commands_topic: settings.commands_quarantine_topic,
        },
        PoisonLimit(settings.worker_poison_limit),
        clock,
        stats.registry,
    )
    stall = StallWatch(settings.worker_stall_seconds) if settings.worker_stall_seconds else None

    @app.service
    class _Resources(mode.Service):
        """Runs the outbox relay's process; closes what the agents and timers share when the
        worker stops."""

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

    async def refuse(event: Any, decoded: Decoded[Any]) -> None:
        """A record no version of this worker can apply: counted, then quarantined."""
        _refuse(
            decoded, f"{event.message.topic}[{event.message.partition}]@{event.message.offset}", stats
        )
        error = "newer_schema" if decoded.newer else "undecodable"
        await quarantine.put(_source(event), event.key, event.value, error, decoded.refused or error)

    async def apply_alerts(part: Sequence[tuple[Any, AlertRecord]]) -> list[IncidentEvent]:
        records = [record for _, record in part]
        positions = [RecordPosition(e.message.partition, e.message.offset) for e, _ in part]
        created = await retry_transient(
            f"applying {len(records)} alerts",
            partial(pipeline.process_alerts, records, positions),
        )
        quarantine.applied()
        stats.alerts_processed.inc(len(records))
        return created

    async def poisoned(item: tuple[Any, AlertRecord], exc: BaseException) -> None:
        event, _ = item
        await quarantine.put(_source(event), event.key, event.value, type(exc).__name__, reason_of(exc))

    async def alert_batch(events: Sequence[Any]) -> None:
        items: list[tuple[Any, AlertRecord]] = []
        for event in events:
            decoded = decode_alert(event.value)
            if decoded.record is None:
                await refuse(event, decoded)
            else:
                items.append((event, decoded.record))
        if not items:  # (poison alone is progress too: its offsets move on)
            activity.batches += 1
            return
        with activity.applying():
            created = await isolate(items, apply_alerts, poisoned)
        if created:
            relay.wake()
        for event in created:
            stats.events_created.labels(event.type.value).inc()
        escalation_metrics.count(created)

    async def command_event(event: Any) -> None:
        decoded = decode_command(event.value)
        command = decoded.record
        if command is None:
            await refuse(event, decoded)
            return
        with activity.applying():
            try:
                result = await retry_transient(
                    f"command {command.command_id}", partial(pipeline.process_command, command)
                )
            except RETRIED as exc:  # (retry_transient raises only the permanent ones)
                await quarantine.put(
                    _source(event), event.key, event.value, type(exc).__name__, reason_of(exc)
                )
                return
        quarantine.applied()
        relay.wake()
        log.info(
            "command %s %s %s: %s",
            command.command_id,
            command.action,
            command.incident_id,
            result.reason,
        )

    @app.agent(alerts_topic, name="alerts")
    async def process_alerts(stream: faust.StreamT[bytes]) -> None:
        window = settings.batch_window_seconds
        async for events in stream.take_events(settings.batch_size, within=window):  # type: ignore[attr-defined]
            try:
                await alert_batch(events)
            except TooMuchPoison as exc:
                on_poison_limit(exc)
                return

    @app.agent(commands_topic, name="commands")
    async def process_commands(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await command_event(event)
            except TooMuchPoison as exc:
                on_poison_limit(exc)
                return

    @app.timer(interval=2.0, name="maintenance")  # type: ignore[untyped-decorator]
    async def release_maintenance_windows() -> None:
        try:
            # In record time: a window is released once every record received before its end is
            # applied (a held alert's resolution still in the backlog must not be outrun).
            at = await record_time.watermark(clock())
            if at is not None and await pipeline.release_windows(at):
                relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("maintenance-window release failed: %s", reason_of(exc))

    @app.timer(interval=MEASURE_SECONDS, name="metrics")  # type: ignore[untyped-decorator]
    async def measure() -> None:
        stats.heartbeat.set_to_current_time()
        started = clock()  # before the measurement: what it finds applied was applied by then
        try:
            behind = await lag.update(stats)
        except (KafkaError, OSError, TimeoutError) as exc:
            record_time.forget()
            log.debug("lag not measured this time: %s: %s", type(exc).__name__, exc)
            return
        topic = settings.alerts_topic
        record_time.observe({p: n for (t, p), n in behind.items() if t == topic}, started)
        try:
            await stats.measure_backlog(engine)
        except (SQLAlchemyError, OSError) as exc:
            log.debug("outbox backlog not measured this time: %s: %s", type(exc).__name__, exc)
        if stall is not None:
            mine = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
            waited = stall.observe(loop_time(), behind, mine, activity)
            if waited is not None:
                on_stall(waited)

    @app.timer(interval=1.0, name="quiet")  # type: ignore[untyped-decorator]
    async def expire_quiet_periods() -> None:
        try:
            # In record time, never the wall clock: after an outage or a restart with lag, the
            # renewed firing of a quiet incident may still wait in the backlog.
            at = await record_time.watermark(clock())
            if at is not None and await pipeline.expire_quiet(at):
                relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("quiet-period check failed: %s", reason_of(exc))

    @app.timer(interval=settings.escalation_interval_seconds, name="escalations")  # type: ignore[untyped-decorator]
    async def escalate() -> None:
        try:
            escalated = await run_escalations(
                store,
                escalation_policy,
                clock(),
                limit=settings.escalation_batch_size,
                metrics=escalation_metrics,
            )
            if escalated:
                relay.wake()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("escalation run failed: %s", reason_of(exc))

    return app
