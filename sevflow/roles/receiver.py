"""``sevflow receiver``: the receiver role, built from :class:`Settings` in :func:`build_receiver`.

Read top to bottom: the credentials (refused at start when unusable); the store's engine (the
incident API reads it); the Kafka clients (the alerts publisher, the commands publisher); the
vendor callbacks; the ASGI app with the incident, admin and status-page routes; the internal
listener and, when a callback secret is set, the public one. :func:`run_receiver` serves them
(and the canary, when enabled) until SIGINT/SIGTERM.
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from models.clock import utc_now
from models.escalation import EscalationPolicy
from models.settings import Settings
from models.teams import TeamsError
from receiver.access import Credentials, TokenFileError, load_token_file
from receiver.app import create_app, create_callbacks_app
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
from sevflow.listeners import listener_config
from sevflow.roles.collector import settle_collector
from sevflow.roles.startup import listeners_problem, metrics_auth
from sevflow.supervise import STATUS_FILE
from sevflow.teams import load_teams
from sinks.clock import SystemClock
from store.db import async_engine
from streams.escalation import load_policy

__all__ = ["Receiver", "build_receiver", "receiver_credentials", "run_receiver"]

log = logging.getLogger("sevflow")


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


@dataclass
class Receiver:
    """The built role: its listeners (the internal one first) and what to close after them."""

    configs: list[uvicorn.Config]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_receiver(settings: Settings, credentials: Credentials) -> Receiver:
    """The receiver's clients, app and listeners."""
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
    app = create_app(
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
                store_engine, commands=[r for r in callbacks if r.name in API_COMMAND_ROUTES]
            ),
            *admin_routes(settings, store_engine, clock=utc_now),
            publish_route(store_engine, commands, clock=utc_now),
        ],
        metrics_auth=metrics_auth(settings),
        console=console_from_settings(
            settings,
            store_engine,
            credentials,
            # the worker's policy, for the console's response targets (a bad file: PolicyError)
            policy=_console_policy(settings),
        ),
    )
    built = Receiver([_internal_listener(settings, app)])
    if vendor_callbacks:
        callbacks_app = create_callbacks_app(vendor_callbacks, metrics=metrics)
        built.configs.append(_public_listener(settings, callbacks_app))
    built.closers += [publisher.close, commands.close]
    if slack_callers is not None:
        built.closers.append(slack_callers.close)
    built.closers.append(store_engine.dispose)
    return built


def _console_policy(settings: Settings) -> EscalationPolicy:
    """The worker's escalation policy with its teams' business hours (the console's SEV4 targets
    by each team's calendar); without the teams when their file cannot be read: the worker
    refuses to start on it and says why, and the receiver must go on taking alerts."""
    try:
        teams = load_teams(settings, resolve=False)
    except TeamsError as exc:
        log.warning("console: response targets without the teams' business hours: %s", exc)
        teams = None
    return load_policy(settings.escalation_policy_file, settings.playbook_times(), teams=teams)


def _internal_listener(settings: Settings, app: Callable[..., Any]) -> uvicorn.Config:
    return listener_config(
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


def _public_listener(settings: Settings, app: Callable[..., Any]) -> uvicorn.Config:
    return listener_config(
        app,
        settings.callbacks_host,
        settings.callbacks_port,
        settings.public_limits(),
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


async def _serve(settings: Settings, receiver: Receiver) -> None:
    servers = [uvicorn.Server(c) for c in receiver.configs]
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
        for close in receiver.closers:
            await close()


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


def run_receiver(settings: Settings) -> int:
    """Serve the webhook until SIGINT/SIGTERM."""
    problem = settings.webhook_auth_problem() or listeners_problem(settings, "receiver")
    if problem:
        print(f"sevflow: {problem}", file=sys.stderr)
        return 2
    try:
        credentials = receiver_credentials(settings)
        receiver = build_receiver(settings, credentials)
    except (TokenFileError, ValueError) as exc:  # ValueError: PolicyError too
        print(f"sevflow: {exc}", file=sys.stderr)
        return 2
    log.info("receiver listening on http://%s:%d", settings.http_host, settings.http_port)
    if len(receiver.configs) > 1:
        log.info(
            "vendor callbacks listening on http://%s:%d",
            settings.callbacks_host,
            settings.callbacks_port,
        )
    # The ~100k objects of the imports and the app live as long as the process: left to the
    # collector, every full collection walks them all (a sixth of the receiver's CPU under load).
    # A payload allocates thousands of short-lived objects, nearly all freed by reference counting:
    # a young generation of 20,000 instead of 700 collects 30x less often (~6% of the CPU).
    settle_collector((20_000,))
    # uvicorn picks its event loop (uvloop when installed) only in Server.run(); serving from our
    # own runner, ask the config for that loop, or the receiver runs on asyncio's default loop.
    with asyncio.Runner(loop_factory=receiver.configs[0].get_loop_factory()) as runner:
        runner.run(_serve(settings, receiver))
    return 0
