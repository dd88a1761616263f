"""The faust application: its agents and timers around a built :class:`streams.pipeline.Pipeline`
(sevflow/roles/worker.py builds it, its store, the relay's process and the lag probe), never at
import time.

Agents are thin adapters: what they do is :class:`streams.steps.WorkerSteps`, one method each; they
decode records, hand batches to the pipeline and leave every rule to ``models``. The worker runs
``at_least_once`` (faust's exactly_once has open duplicate and fencing bugs) and every step is
idempotent, so a redelivered record changes nothing. Per-event errors are handled inside the
agents: an exception escaping an agent can skip that event's offset on restart (faust issue #315).
Transient database errors are retried until they pass, so an offset is never committed past an
unapplied record; a poison record (it does not decode, or the store refuses it for good) is
isolated from its batch and quarantined with its reason (streams/failures.py,
streams/quarantine.py), so the rest of the partition moves on.

* ``alerts``: alerts topic → pipeline (classify, dedup, group, persist + outbox), in batches,
  each after the check of the worker's source topics that every assignment starts
  (streams/source_topics.py: a topic deleted, or created again, makes the worker leave to be
  started again, and the positions of an alerts topic created again are forgotten first);
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

import logging
from collections.abc import Callable
from typing import Any

import faust
import mode

from kafka_admin.topics import CONSUMER_METADATA_MAX_AGE_MS
from models.clock import Clock, utc_now
from models.settings import Settings
from streams.batching import worker_batches
from streams.failures import retry_transient
from streams.fetching import FetchingApp
from streams.hard_stop import exit_now
from streams.metrics import LagProbe, WorkerMetrics
from streams.pipeline import Pipeline
from streams.probe_agents import install as install_probes
from streams.quarantine import (
    EXIT_POISONED,
    PoisonLimit,
    Quarantine,
    TooMuchPoison,
    quarantine_topics,
)
from streams.relay_process import RelayProcess
from streams.source_topics import EXIT_TOPIC_GONE, SourceTopics
from streams.stall import EXIT_STALLED
from streams.steps import MEASURE_SECONDS, TopicWriter, WorkerSteps

__all__ = ["broker_urls", "create_app", "retry_transient"]

log = logging.getLogger(__name__)

#: How long a stopping worker waits for its relay process to publish what is left and exit.
RELAY_STOP_SECONDS = 10.0
#: How often the worker checks that its relay process runs.
RELAY_WATCH_SECONDS = 1.0


def _exit_stalled(waited: float) -> None:
    """A stalled consumer may not stop cleanly either (see streams/stall.py)."""
    exit_now(
        EXIT_STALLED,
        f"no record delivered for {waited:.0f}s while records wait on this worker's partitions "
        "(faust's consumer stalled, as after a broker outage)",
        again=True,
    )


def broker_urls(bootstrap: str) -> list[str]:
    """faust's broker URLs from a comma-separated bootstrap list."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def _exit_poisoned(problem: TooMuchPoison) -> None:
    """Without committing the record that crossed the limit (streams/quarantine.py)."""
    exit_now(EXIT_POISONED, str(problem))


def _leave(reason: str) -> None:
    """To be started again (streams/source_topics.py): faust's consumer may wait for ever to
    commit offsets of a deleted topic."""
    exit_now(EXIT_TOPIC_GONE, reason, again=True)


class _WorkerApp(FetchingApp):
    """The worker's faust app: ``on_assigning`` hears of each assignment first, while faust's
    flow control still holds every record back (streams/source_topics.py)."""

    on_assigning: Callable[[], None] | None = None

    async def _on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        if self.on_assigning is not None and not self.should_stop:
            self.on_assigning()
        await super()._on_partitions_assigned(assigned, generation_id)


def _faust_app(settings: Settings, overrides: dict[str, Any]) -> _WorkerApp:
    # faust's own topics (table changelogs) get the replicas of sevflow's topics when set; faust
    # cannot ask for the cluster's default (-1) and keeps its 1 then.
    replication: dict[str, Any] = {}
    if settings.topic_replication_factor > 0:
        replication["topic_replication_factor"] = settings.topic_replication_factor
    return _WorkerApp(
        settings.app_id,
        fetch_wait=settings.fetch_wait_seconds,
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
        # (faust's assignor leaves out topics missing from the consumer's metadata: see there)
        consumer_metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
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
    app: faust.App,
    steps: WorkerSteps,
    sources: SourceTopics,
    on_poison_limit: Callable[[TooMuchPoison], None],
) -> None:
    settings = steps.settings
    raw: dict[str, Any] = {
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": settings.topic_partitions,
    }

    @app.agent(app.topic(settings.alerts_topic, **raw), name="alerts")
    async def process_alerts(stream: faust.StreamT[bytes]) -> None:
        batches = worker_batches(stream, app, settings)
        async for events in batches:
            await sources.ready()  # (positions of a topic deleted since are forgotten first)
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


def _timers(
    app: faust.App,
    steps: WorkerSteps,
    on_stall: Callable[[float], None],
    on_poison_limit: Callable[[TooMuchPoison], None],
) -> None:
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

    install_probes(app, steps, assignment, on_poison_limit)

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
    on_topic_change: Callable[[str], None] = _leave,
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
        TopicWriter(app, settings),
        quarantine_topics(settings),
        PoisonLimit(settings.worker_poison_limit),
        clock,
        stats.registry,
    )
    steps = WorkerSteps(settings, pipeline, relay, lag, quarantine, clock, stats)
    sources = SourceTopics(
        settings.kafka_bootstrap,
        [settings.alerts_topic, settings.commands_topic, settings.probe_results_topic],
        pipeline.store.engine,
        clock,
        on_topic_change,
    )
    app.on_assigning = sources.assigning
    app.service(_resources(steps))
    _agents(app, steps, sources, on_poison_limit)
    _timers(app, steps, on_stall, on_poison_limit)
    return app
