"""``sevflow sinks``: the sinks role, built from :class:`Settings` in :func:`serve_sinks`.

Read top to bottom: the events and dead-letter topics; the dead-letter producer; the escalation
policy (its security contacts); the sinks and their fan-out (sinks/fanout.py: which sinks, what
each receives, in which order, with which guarantees); the sinks' metrics; the built-in status
page's server. :func:`run_sinks` prepares the store, waits for Kafka and runs it until
SIGINT/SIGTERM.
"""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable

import uvicorn
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from kafka_admin.topics import TopicSettingsError, ensure_topics
from models.settings import Settings
from models.teams import TeamsError
from sevflow.listeners import listener_config, start_metrics_server
from sevflow.problems import store_problem
from sevflow.roles.collector import settle_collector
from sevflow.roles.startup import listeners_problem, wait_for_topics
from sevflow.teams import load_teams
from sinks.clock import Clock, SystemClock
from sinks.fanout import SINK_STOP_GRACE, Fanout, build_sinks
from sinks.kafka import TopicGone, dead_letter_producer
from sinks.metrics import SinkCollector, undelivered_dead_letters
from sinks.status_server import create_status_app
from sinks.trust import TrustError
from store.db import UnsupportedDatabaseError, async_engine, sync_engine
from store.deliveries import DeliveryLog
from store.migrate import NewerStore, create_missing_sink_tables, upgrade
from store.status_page import StatusPageStore
from streams.escalation import PolicyError, load_policy

__all__ = [
    "SINK_STOP_GRACE",
    "create_sink_tables",
    "run_sinks",
    "run_sinks_role",
    "serve_sinks",
]

log = logging.getLogger("sevflow.sinks")


def create_sink_tables(url: str) -> None:
    """Bring the store's schema up to date (Alembic), then create any sink table no migration
    has created yet (``checkfirst``: a no-op once the sinks' migration exists)."""
    engine = sync_engine(url)
    try:
        try:
            upgrade(engine)
        except NewerStore as exc:  # (as sevflow.roles.startup.init_db)
            log.warning("%s: used as it is, not migrated (migrations only add)", exc)
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
    policy = load_policy(settings.escalation_policy_file)  # a bad file: PolicyError, status 2
    teams = load_teams(settings)  # a bad teams file: TeamsError, status 2
    sinks = build_sinks(  # a bad CA file: TrustError, status 2
        settings,
        engine,
        clock,
        security_contacts=(*policy.security_targets, *policy.data_breach_targets),
        teams=teams,
    )
    # Started once the settings above are known good: a refusal left it unclosed.
    producer = dead_letter_producer(settings)
    await producer.start()
    collector = SinkCollector(
        sinks,
        settings.sinks_dlq_topic,
        canary_interval=settings.canary_interval_seconds if settings.canary_enabled() else 0.0,
        started_at=clock.now(),
    )
    fanout = Fanout(settings, engine, clock, sinks, producer, collector, teams)
    _serve_metrics(settings, engine, collector, stop, fanout)
    server: uvicorn.Server | None = None
    try:
        await fanout.start(stop)
        server = _serve_status_page(settings, engine, clock, fanout)
        await fanout.until_stopped_or_failed(stop)
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        await fanout.close()
        await producer.stop()


def _serve_metrics(
    settings: Settings,
    engine: AsyncEngine,
    collector: SinkCollector,
    stop: asyncio.Event,
    fanout: Fanout,
) -> None:
    """The sinks' ``/metrics`` (with the dead letters' count, refreshed beside the sinks)."""
    if not settings.sinks_metrics_port:
        return
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    try:
        start_metrics_server(
            settings.sinks_metrics_port, settings.status_page_host, registry, settings.metrics_token
        )
    except OSError as exc:
        log.warning(
            "sink metrics not served on %s:%d: %s (set SEVFLOW_SINKS_METRICS_PORT)",
            settings.status_page_host,
            settings.sinks_metrics_port,
            exc.strerror,
        )
        return
    measuring = _measure_dead_letters(settings, engine, collector, stop)
    fanout.add(asyncio.create_task(measuring, name="dlq-size"))


def _serve_status_page(
    settings: Settings, engine: AsyncEngine, clock: Clock, fanout: Fanout
) -> uvicorn.Server | None:
    """The built-in status page's server, unless Atlassian Statuspage is configured."""
    if settings.statuspage_configured():
        return None
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
    fanout.add(asyncio.create_task(server.serve(), name="status-page"))
    log.info("status page on http://%s:%d", settings.status_page_host, settings.status_page_port)
    return server


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


async def _serve_until_signalled(settings: Settings) -> int:
    """:func:`serve_sinks` until SIGINT/SIGTERM; the role's exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = async_engine(settings.sqlalchemy_url(), checkpoint_in_background=True)
    try:
        await serve_sinks(settings, engine, stop)
    except (TopicSettingsError, PolicyError, TeamsError, TrustError) as exc:
        log.error("sinks stopped: %s", exc)
        return 2
    except TopicGone as exc:
        log.error("sinks stopped: %s", exc)
        return 1
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


def run_sinks(settings: Settings, wait_for_kafka: Callable[[], int | None] = lambda: None) -> int:
    """Run every configured sink until SIGINT/SIGTERM; 1 when a sink fails, 2 on bad settings.

    ``wait_for_kafka`` runs once the store is ready (an unreachable database is told at once,
    not after a minute of waiting for Kafka); a status from it ends the role with that status."""
    if (problem := listeners_problem(settings, "sinks")) is not None:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
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
    settle_collector()  # (sevflow/roles/collector.py: its full collections made the pages' tail)
    return asyncio.run(_serve_until_signalled(settings))


def run_sinks_role(settings: Settings) -> int:
    """Run the sink consumers and the built-in status page until SIGINT/SIGTERM."""
    # Like the worker, wait for Kafka (once the store is ready): the sinks exited at once, and
    # ``sevflow run`` with them.
    return run_sinks(settings, lambda: wait_for_topics(settings, "sinks"))
