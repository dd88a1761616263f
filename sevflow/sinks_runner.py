"""``sevflow sinks``: every configured sink's consumer plus the built-in status page server, and
beside the Slack sink the task that announces forced maintenance windows (sinks/notices.py)."""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import uvicorn
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_admin.topics import TopicSettingsError, ensure_topics
from models.settings import Settings
from models.teams import TeamsError
from sevflow.listeners import listener_config, start_metrics_server
from sevflow.operator_cli import store_problem
from sevflow.teams import load_teams
from sinks.assemble import build_sinks
from sinks.clock import Clock, SystemClock
from sinks.dlq import DeadLetterWriter
from sinks.errors import SinkStopped
from sinks.kafka import SinkConsumer, dead_letter_producer, sink_consumer
from sinks.metrics import SinkCollector, undelivered_dead_letters
from sinks.notices import NoticeAnnouncer, announce_until
from sinks.slack import SlackSink
from sinks.status_server import create_status_app
from sinks.statuspage import StatusPageSink, follow_up_until
from sinks.storm import StormDetector
from sinks.worker import SinkWorker
from store.db import UnsupportedDatabaseError, async_engine, sync_engine
from store.deliveries import DeliveryLog, StatusPageStore
from store.migrate import create_missing_sink_tables, upgrade
from store.notices import NoticeStore
from streams.escalation import PolicyError, load_policy

__all__ = ["create_sink_tables", "run_sinks", "serve_sinks"]

log = logging.getLogger("sevflow.sinks")

#: Seconds the sinks' consumers get, once asked to stop, to finish the batch in hand (its vendor
#: calls answered and recorded in the delivery log, its offsets committed) before they are
#: cancelled. Cancelled at once, a call the vendor had taken was not recorded, and the next
#: process made it again (a second PagerDuty trigger; a Slack post reconciled). Below the worker's
#: stop deadline and the 30 s supervisors give before SIGKILL.
SINK_STOP_GRACE = 15.0


def create_sink_tables(url: str) -> None:
    """Bring the store's schema up to date (Alembic), then create any sink table no migration
    has created yet (``checkfirst``: a no-op once the sinks' migration exists)."""
    engine = sync_engine(url)
    try:
        upgrade(engine)
        create_missing_sink_tables(engine)
    finally:
        engine.dispose()


async def serve_sinks(
    settings: Settings, engine: AsyncEngine, stop: asyncio.Event, clock: Clock | None = None
) -> None:
    """Run until ``stop`` is set or a sink fails (the exception propagates)."""
    clock = clock or SystemClock()
    await ensure_topics(
        settings.kafka_bootstrap,
        [settings.topic_spec(settings.events_topic), settings.topic_spec(settings.sinks_dlq_topic)],
        settings.kafka_timeout_seconds,
    )
    producer = dead_letter_producer(settings)
    await producer.start()
    policy = load_policy(settings.escalation_policy_file)  # a bad file: PolicyError, status 2
    sinks = build_sinks(
        settings,
        engine,
        clock,
        security_contacts=(*policy.security_targets, *policy.data_breach_targets),
        teams=load_teams(settings),  # a bad teams file: TeamsError, status 2
    )
    consumers = [sink_consumer(settings, sink.name) for sink in sinks]
    tasks: list[asyncio.Task[None]] = []
    consumers_by_task: dict[asyncio.Task[None], tuple[str, SinkConsumer]] = {}
    server: uvicorn.Server | None = None
    collector = SinkCollector(
        sinks,
        settings.sinks_dlq_topic,
        canary_interval=settings.canary_interval_seconds if settings.canary_enabled() else 0.0,
        started_at=clock.now(),
    )
    if settings.sinks_metrics_port:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(collector)
        try:
            start_metrics_server(
                settings.sinks_metrics_port, settings.status_page_host, registry, settings.metrics_token
            )
            tasks.append(
                asyncio.create_task(
                    _measure_dead_letters(settings, engine, collector, stop), name="dlq-size"
                )
            )
        except OSError as exc:
            log.warning(
                "sink metrics not served on %s:%d: %s (set SEVFLOW_SINKS_METRICS_PORT)",
                settings.status_page_host,
                settings.sinks_metrics_port,
                exc.strerror,
            )
    try:
        for sink, consumer in zip(sinks, consumers, strict=True):
            await consumer.start()
            worker = SinkWorker(
                sink,
                dead_letters=DeadLetterWriter(producer, settings.sinks_dlq_topic),
                storm=StormDetector(settings.sinks_storm_threshold),
                clock=clock,
                concurrency=settings.sinks_concurrency,
                max_consecutive_dead=settings.sinks_dlq_max_consecutive,
                # A call in flight is answered within the request timeout; within the stop grace.
                drain_grace=min(settings.sinks_request_timeout_seconds + 1, SINK_STOP_GRACE - 2),
            )
            task = asyncio.create_task(worker.run(consumer, stop), name=f"sink-{sink.name}")
            tasks.append(task)
            consumers_by_task[task] = (sink.name, consumer)
            log.info("sink %s consuming %s", sink.name, settings.events_topic)
            if isinstance(sink, SlackSink):
                announcer = NoticeAnnouncer(sink, NoticeStore(engine), clock)
                collector.notices = announcer
                tasks.append(asyncio.create_task(announce_until(announcer, stop), name="notices"))
            if isinstance(sink, StatusPageSink) and settings.statuspage_followup_minutes:
                interval = timedelta(minutes=settings.statuspage_followup_minutes)
                tasks.append(
                    asyncio.create_task(
                        follow_up_until(sink, interval, clock, stop), name="status-followups"
                    )
                )
        if not settings.statuspage_configured():
            app = create_status_app(StatusPageStore(engine), clock.now, settings.status_page_title)
            server = uvicorn.Server(
                listener_config(
                    app,
                    settings.status_page_host,
                    settings.status_page_port,
                    settings.public_limits(),
                    forwarded_allow_ips=settings.forwarded_allow_ips,
                )
            )
            tasks.append(asyncio.create_task(server.serve(), name="status-page"))
            log.info("status page on http://%s:%d", settings.status_page_host, settings.status_page_port)
        await _until_stopped_or_failed(tasks, stop, consumers_by_task, collector)
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        # A sink's worker checks ``stop`` between batches: it finishes and commits the batch in
        # hand first, within the grace; what is still running after it is cancelled.
        busy = [t for t in tasks if t.get_name().startswith("sink-") and not t.done()]
        if busy:
            log.info("stopping: the sinks finish their batches in hand (up to %.0fs)", SINK_STOP_GRACE)
            await asyncio.wait(busy, timeout=SINK_STOP_GRACE)
        for task in tasks:
            if task.get_name() != "status-page":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        for sink in sinks:
            await sink.close()
        await producer.stop()


async def _until_stopped_or_failed(
    tasks: list[asyncio.Task[None]],
    stop: asyncio.Event,
    consumers_by_task: dict[asyncio.Task[None], tuple[str, SinkConsumer]],
    collector: SinkCollector,
) -> None:
    """Wait until ``stop`` is set or a task fails (its exception is raised, ``stop`` set).

    A sink that stops itself (:class:`SinkStopped`: it dead-lettered too much in a row, as with
    a revoked Slack token) stops alone: its consumer leaves, its events wait in Kafka for its
    next start, ``sevflow_sink_stopped`` says so, and the other sinks go on. Stopping them all
    with it let a broken Slack integration stop PagerDuty's pages. Once no sink is left, the last
    one's exception is raised."""
    stopper = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[Any]] = {*tasks, stopper}
    try:
        while stopper in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is stopper or (exc := task.exception()) is None:
                    continue
                if not isinstance(exc, SinkStopped) or task not in consumers_by_task:
                    raise exc
                name, consumer = consumers_by_task[task]
                collector.stopped.add(name)
                if not any(t in pending for t in consumers_by_task):
                    raise exc
                log.error("%s; the other sinks go on", exc)
                await consumer.stop()
    finally:
        stop.set()
        stopper.cancel()


async def _measure_dead_letters(
    settings: Settings, engine: AsyncEngine, collector: SinkCollector, stop: asyncio.Event
) -> None:
    """Refresh sevflow_dlq_size every 30 s until ``stop``."""
    log_ = DeliveryLog(engine)
    while not stop.is_set():
        try:
            collector.dlq_size = await undelivered_dead_letters(settings, log_)
        except (KafkaError, SQLAlchemyError, OSError, TimeoutError) as exc:
            log.debug("dead letters not counted this time: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 30)


def run_sinks(settings: Settings, wait_for_kafka: Callable[[], int | None] = lambda: None) -> int:
    """Run every configured sink until SIGINT/SIGTERM; 1 when a sink fails, 2 on bad settings.

    ``wait_for_kafka`` runs once the store is ready (an unreachable database is told at once,
    not after a minute of waiting for Kafka); a status from it ends the role with that status."""
    try:
        create_sink_tables(settings.sqlalchemy_url())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow: SEVFLOW_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"sevflow: cannot prepare the incident store: {store_problem(exc)}", file=sys.stderr)
        return 1
    if (waited := wait_for_kafka()) is not None:
        return waited

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        engine = async_engine(settings.sqlalchemy_url())
        try:
            await serve_sinks(settings, engine, stop)
        except (TopicSettingsError, PolicyError, TeamsError) as exc:
            log.error("sinks stopped: %s", exc)
            return 2
        except (KafkaError, OSError, TimeoutError) as exc:
            log.error("sinks stopped: %s", type(exc).__name__)
            return 1
        except Exception:
            log.exception("a sink failed")
            return 1
        finally:
            await engine.dispose()
            with contextlib.suppress(NotImplementedError):
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
        return 0

    return asyncio.run(main())
