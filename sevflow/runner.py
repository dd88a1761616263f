"""What each command starts, wired from one Settings object."""

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from types import FrameType

import httpx
import uvicorn
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from kafka_admin.topics import TopicSettingsError, ensure_topics
from models.clock import utc_now
from models.runbooks import RunbookError
from models.settings import Settings
from receiver.access import Credentials, TokenFileError, load_token_file
from receiver.app import create_app as create_receiver
from receiver.app import create_callbacks_app
from receiver.auth import WebhookAuth
from receiver.callbacks import routes_from_settings, slack_callers_from_settings
from receiver.canary import Canary, canary_authorization, loopback_url
from receiver.commands import CommandPublisher
from receiver.console import console_from_settings
from receiver.incident_api import API_COMMAND_ROUTES, incident_routes
from receiver.kafka import KafkaAlertPublisher
from receiver.metrics import ReceiverMetrics
from receiver.ratelimit import RateLimiter
from receiver.statuspage_api import publish_route
from sevflow.admin_api import admin_routes
from sevflow.listeners import listener_config, start_metrics_server
from sevflow.operator_cli import store_problem
from sevflow.supervisor import STATUS_FILE, supervise
from sevflow.teams import load_teams, teams_problem
from sinks.clock import SystemClock
from store.db import UnsupportedDatabaseError, async_engine, sync_engine
from store.migrate import upgrade
from streams.runbooks import load_runbooks

__all__ = ["init_db", "receiver_credentials", "run_all", "run_receiver", "run_sinks_role", "run_worker"]

log = logging.getLogger("sevflow")

#: Seconds a worker asked to stop (SIGINT/SIGTERM) may take before the process exits anyway. A clean
#: stop takes a second or two (faust waits for the events in flight and commits their offsets), but
#: faust waits for ever when Kafka is down (its consumer's last commit never returns) or while an
#: agent waits for the database. Exiting then loses nothing: offsets are committed only for applied
#: records, the rest are delivered again and applying them again changes nothing. Below the 30 s
#: that Kubernetes and most supervisors give before SIGKILL, so the lease is at least tried.
WORKER_STOP_DEADLINE = 20.0


def _metrics_auth(settings: Settings) -> WebhookAuth | None:
    """What ``/metrics`` requires: the bearer ``SEVFLOW_METRICS_TOKEN``, or nothing when unset."""
    return WebhookAuth(tokens=[settings.metrics_token]) if settings.metrics_token else None


def init_db(settings: Settings) -> int:
    """Bring the store's schema to the latest migration (idempotent); 2 for an unusable URL, 1
    when the store cannot be reached or migrated."""
    try:
        engine = sync_engine(settings.sqlalchemy_url())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow: SEVFLOW_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        print(f"sevflow: cannot prepare the incident store: {store_problem(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    log.info("incident store ready (%s)", engine.url.get_backend_name())
    return 0


def receiver_credentials(settings: Settings) -> Credentials:
    """The receiver's credentials: the scoped API tokens (the variable and the file, whose mode
    is checked: raises :class:`TokenFileError`) and the webhook's, which carry the ``webhook``
    scope only."""
    tokens = list(settings.api_tokens)
    if settings.api_tokens_file is not None:
        tokens += load_token_file(settings.api_tokens_file)
    if not tokens and settings.webhook_tokens:
        # Until this release the API took the webhook tokens when SEVFLOW_API_TOKENS was unset.
        log.warning(
            "SEVFLOW_API_TOKENS is unset: the incident API refuses every request, and the webhook "
            "tokens no longer open it (they carry the webhook scope only). A client of the API "
            "needs its own token: SEVFLOW_API_TOKENS=<name>:read,write:<secret> (read: GET "
            "/api/incidents; write: ack/resolve; admin: maintenance, DLQ replay)"
        )
    return Credentials(
        tokens,
        webhook_tokens=settings.webhook_tokens,
        webhook_basic=settings.webhook_basic_auth,
        allow_unauthenticated=settings.allow_unauthenticated,
    )


def run_receiver(settings: Settings) -> int:
    """Serve the webhook until SIGINT/SIGTERM."""
    problem = settings.webhook_auth_problem()
    if problem:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    try:
        credentials = receiver_credentials(settings)
    except (TokenFileError, ValueError) as exc:
        print(f"sevflow: {exc}", file=sys.stderr)
        return 2
    store_engine = async_engine(settings.sqlalchemy_url())
    commands = CommandPublisher(settings.kafka_bootstrap, settings.commands_topic)
    publisher = KafkaAlertPublisher(
        settings.kafka_bootstrap,
        settings.alerts_topic,
        settings.topic_partitions,
        settings.kafka_timeout_seconds,
        retry_dedup_seconds=settings.retry_dedup_seconds,
        spec=settings.topic_spec(settings.alerts_topic),
    )
    slack_callers = slack_callers_from_settings(settings)
    # The API's ack / resolve stay on the internal listener with the rest of the API; Slack's and
    # PagerDuty's callbacks get the public one, which serves nothing else.
    callbacks = routes_from_settings(settings, commands, slack_callers=slack_callers)
    vendor_callbacks = [r for r in callbacks if r.name not in API_COMMAND_ROUTES]
    metrics = ReceiverMetrics(roles_file=settings.data_dir / STATUS_FILE)
    app = create_receiver(
        publisher=publisher,
        auth=credentials,
        now=utc_now,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        max_concurrent_publishes=settings.max_concurrent_publishes,
        publish_queue_seconds=settings.publish_queue_seconds,
        extra_routes=[
            *incident_routes(
                store_engine,
                commands=[r for r in callbacks if r.name in API_COMMAND_ROUTES],
            ),
            *admin_routes(settings, store_engine, clock=utc_now),
            publish_route(store_engine, commands, clock=utc_now),
        ],
        metrics_auth=_metrics_auth(settings),
        console=console_from_settings(settings, store_engine, credentials),
    )
    configs = [
        listener_config(
            app,
            settings.http_host,
            settings.http_port,
            settings.internal_limits(),
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # In a storm Alertmanager opens a connection per group at once (thousands). With
            # uvicorn's 2048 the accept queue overflowed while the loop was busy, and each overflow
            # stalled its group until a TCP retransmit (1 s, then 3 s). Linux caps it at
            # net.core.somaxconn.
            backlog=4096,
        )
    ]
    if vendor_callbacks:
        configs.append(
            listener_config(
                create_callbacks_app(vendor_callbacks, metrics=metrics),
                settings.callbacks_host,
                settings.callbacks_port,
                settings.public_limits(),
                forwarded_allow_ips=settings.forwarded_allow_ips,
            )
        )

    async def serve() -> None:
        servers = [uvicorn.Server(c) for c in configs]
        serving = [asyncio.create_task(server.serve()) for server in servers]
        canary = (
            asyncio.create_task(_run_canary(settings, servers[0], serving[0]))
            if settings.canary_enabled()
            else None
        )
        try:
            # Each server takes SIGINT/SIGTERM from the one started before it; whichever stops
            # first, the other stops too.
            await asyncio.wait(serving, return_when=asyncio.FIRST_COMPLETED)
            for server in servers:
                server.should_exit = True
            await asyncio.gather(*serving)
        finally:
            if canary is not None:
                canary.cancel()
                await asyncio.gather(canary, return_exceptions=True)
            await publisher.close()
            await commands.close()
            if slack_callers is not None:
                await slack_callers.close()
            await store_engine.dispose()

    log.info("receiver listening on http://%s:%d", settings.http_host, settings.http_port)
    if vendor_callbacks:
        log.info(
            "vendor callbacks listening on http://%s:%d",
            settings.callbacks_host,
            settings.callbacks_port,
        )
    # The ~100k objects of the imports and the app live as long as the process: left to the
    # collector, every full collection walks them all (a sixth of the receiver's CPU under load).
    # A payload allocates thousands of short-lived objects, nearly all freed by reference counting:
    # a young generation of 20,000 instead of 700 collects 30x less often (~6% of the CPU).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000)
    # uvicorn picks its event loop (uvloop when installed) only in Server.run(); serving from our
    # own runner, ask the config for that loop, or the receiver runs on asyncio's default loop.
    with asyncio.Runner(loop_factory=configs[0].get_loop_factory()) as runner:
        runner.run(serve())
    return 0


async def _run_canary(settings: Settings, server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    """The end-to-end canary (receiver/canary.py), posting to this receiver once it listens."""
    while not server.started:
        if serving.done():
            return
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]  # the bound one, also for port 0
    async with httpx.AsyncClient() as client:
        await Canary(
            url=loopback_url(settings.http_host, port),
            authorization=canary_authorization(settings.webhook_tokens, settings.webhook_basic_auth),
            interval=settings.canary_interval_seconds,
            resolve_after=settings.canary_resolve_after_seconds,
            clock=SystemClock(),
            client=client,
        ).run()


def _runbooks_problem(settings: Settings) -> str | None:
    """Why the runbooks cannot be used (the file and the line), or None: checked before a role
    starts, so a bad file stops ``run`` and ``worker`` at once instead of a restart loop."""
    try:
        load_runbooks(settings.runbooks_dir)
    except RunbookError as exc:
        return str(exc)
    return None


def run_worker(settings: Settings) -> int:  # noqa: RET503 (the worker call never returns)
    """Run the stream worker until SIGINT/SIGTERM."""
    if (problem := _runbooks_problem(settings) or teams_problem(settings)) is not None:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    status = init_db(settings)
    if status:
        return status
    if (waited := _wait_for_topics(settings)) is not None:
        return waited
    # The worker stays on asyncio's own loop. With uvloop (faust's ``--loop uvloop``) a faust agent
    # doing nothing took records 20% faster, but bench/e2e_latency.py's webhook-to-page p50 went
    # from about 90 ms to 240 ms.
    import faust  # faust patches the event loop policy on import: only for the worker

    from streams.app import create_app
    from streams.metrics import WorkerMetrics

    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    metrics = WorkerMetrics()
    if settings.worker_metrics_port:
        try:
            start_metrics_server(
                settings.worker_metrics_port,
                settings.http_host,
                metrics.registry,
                settings.metrics_token,
            )
        except OSError as exc:  # a second worker on the host: run, say why there is no /metrics
            log.warning(
                "worker metrics not served on %s:%d: %s (set SEVFLOW_WORKER_METRICS_PORT)",
                settings.http_host,
                settings.worker_metrics_port,
                exc.strerror,
            )
    app = create_app(settings, metrics=metrics, teams=load_teams(settings))

    class Worker(faust.Worker):
        """faust's worker, with a deadline on stopping (:data:`WORKER_STOP_DEADLINE`)."""

        def _schedule_shutdown(self, signum: signal.Signals) -> None:
            if not self._signal_stop_time:
                timer = threading.Timer(WORKER_STOP_DEADLINE, _abandon_stop)
                timer.daemon = True
                timer.start()
            super()._schedule_shutdown(signum)

    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so every library's debug message would be formatted; a service has no terminal.
    worker.spinner = None
    worker.execute_from_commandline()  # never returns: exits the process when the worker stops


def _abandon_stop() -> None:
    """The worker did not stop within :data:`WORKER_STOP_DEADLINE`: exit without it (status 1)."""
    log.error(
        "worker did not stop within %.0fs (Kafka or the database unreachable?); exiting: records "
        "not committed are delivered again",
        WORKER_STOP_DEADLINE,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(1)


def _wait_for_topics(settings: Settings, role: str = "worker", attempts: int = 60) -> int | None:
    """Create sevflow's topics before a role subscribes (faust does not create source topics).

    Waits for Kafka up to ``attempts`` seconds, so a role started with the broker is not lost
    (a role that exits is only started again after a backoff).
    None once the topics exist as the settings ask (:mod:`models.topics`); else the exit status:
    2 when a topic differs from the settings (each difference named), 1 when Kafka stayed
    unreachable, 0 when SIGINT or SIGTERM asked to stop meanwhile (asyncio's own SIGINT handling
    cancelled the attempt in progress, which the Kafka client took for one more failure, so
    Ctrl-C was ignored).
    """

    async def ensure_all() -> None:
        await ensure_topics(
            settings.kafka_bootstrap,
            [settings.topic_spec(topic) for topic in settings.created_topics()],
            settings.kafka_timeout_seconds,
        )

    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    ready = False
    previous = {signum: signal.signal(signum, stopping) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for attempt in range(attempts):
            try:
                asyncio.run(ensure_all())
            except TopicSettingsError as exc:
                print(f"sevflow {role}: Kafka topics: {exc}", file=sys.stderr)
                return 2
            except (OSError, TimeoutError, KafkaError) as exc:
                if attempt == 0:
                    log.warning("waiting for Kafka at %s (%s)", settings.kafka_bootstrap, exc)
                if stop.wait(1):
                    break
            else:
                ready = True
                break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop.is_set():
        log.info("%s stopped before it started", role)
        return 0
    if ready:
        return None
    print(f"sevflow: Kafka at {settings.kafka_bootstrap} is not reachable", file=sys.stderr)
    return 1


def run_sinks_role(settings: Settings) -> int:
    """Run the sink consumers and the built-in status page until SIGINT/SIGTERM."""
    from sevflow.sinks_runner import run_sinks

    # Like the worker, wait for Kafka (once the store is ready): the sinks exited at once, and
    # ``sevflow run`` with them.
    return run_sinks(settings, lambda: _wait_for_topics(settings, "sinks"))


def run_all(settings: Settings) -> int:
    """Run the worker, the receiver and the sinks as child processes, each started again when it
    exits (:func:`sevflow.supervisor.supervise`)."""
    problem = settings.webhook_auth_problem() or _runbooks_problem(settings) or teams_problem(settings)
    if problem:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    status = init_db(settings)
    if status:
        return status
    return supervise(
        {role: [sys.executable, "-m", "sevflow", role] for role in ("worker", "receiver", "sinks")},
        settings.restart_policy(),
        settings.data_dir / STATUS_FILE,
    )
