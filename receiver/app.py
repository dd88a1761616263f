"""The receiver's HTTP applications: the internal one (the Alertmanager webhook, ``/health``,
``/ready``, ``/metrics``, the incident API) and the public one of vendor callbacks.

The webhook's steps (rate limit, credentials, size, parse, validate, admit, publish, answer) are
:class:`receiver.webhook.WebhookHandler`'s methods, listed in order in receiver/webhook.py. This
module mounts it and the other routes, each behind its scope (receiver/access.py), and wraps every
route alike: every response carries ``X-Request-ID`` (the caller's, when it sent a sane one),
every request logs one ``key=value`` line with it and is counted and timed in the metrics; a bug
is a JSON 500, logged without the exception's message, which could quote a credential. No line or
body ever carries a credential.
"""

import logging
import random
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import cast

from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from models.clock import Clock
from receiver.access import Credentials, protect
from receiver.auth import WebhookAuth
from receiver.body import BODY_READ_SECONDS
from receiver.errors import error_response, http_error
from receiver.kafka import AlertPublisher
from receiver.metrics import CONTENT_TYPE_LATEST, ReceiverMetrics
from receiver.ratelimit import RateLimiter
from receiver.webhook import (
    RECORDS_FIT_BODY_BYTES,
    RETRY_AFTER_SECONDS,
    WEBHOOK_PATH,
    WebhookHandler,
    WebhookLimits,
)

__all__ = [
    "RECORDS_FIT_BODY_BYTES",
    "RETRY_AFTER_SECONDS",
    "WEBHOOK_PATH",
    "create_app",
    "create_callbacks_app",
    "exact_paths",
]

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

Handler = Callable[[Request], Awaitable[Response]]


def request_id_of(header: str | None) -> str:
    """The caller's X-Request-ID when it is short and plain (it lands in logs), else a new one.

    A new id only has to be unique, not secret: 128 bits from ``random`` (no system call per
    request, unlike ``uuid4``), 32 hex digits.
    """
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return f"{random.getrandbits(128):032x}"


def create_app(
    *,
    publisher: AlertPublisher,
    auth: Credentials,
    now: Clock,
    max_body_bytes: int = 1024 * 1024,
    rate_limiter: RateLimiter | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    metrics: ReceiverMetrics | None = None,
    max_concurrent_publishes: int = 64,
    publish_queue_seconds: float = 5.0,
    extra_routes: Sequence[Route] = (),
    body_read_seconds: float = BODY_READ_SECONDS,
    metrics_auth: WebhookAuth | None = None,
    console: Callable[[Sequence[Route], Callable[[str, Handler], Handler]], BaseRoute] | None = None,
) -> Starlette:
    """Build the receiver; ``publisher``, ``now`` and ``monotonic`` are the seams tests use.

    ``metrics_auth``: the bearer token ``/metrics`` requires (``SEVFLOW_METRICS_TOKEN``); None: open.

    ``extra_routes`` (the incident and admin API) are served beside the webhook, with the same
    request ids, logs and metrics. Every route, these too, is served behind the scope
    :data:`receiver.access.ROUTE_ACCESS` gives it (checked against ``auth``); a route missing there
    raises :class:`receiver.access.RouteWithoutAccess`.
    """
    stats = metrics or ReceiverMetrics()
    webhook = WebhookHandler(
        publisher=publisher,
        credentials=auth,
        now=now,
        limiter=rate_limiter or RateLimiter(0, 1),
        stats=stats,
        limits=WebhookLimits(
            max_body_bytes=max_body_bytes,
            body_read_seconds=body_read_seconds,
            max_concurrent_publishes=max_concurrent_publishes,
            publish_queue_seconds=publish_queue_seconds,
        ),
        monotonic=monotonic,
    )
    others = [
        *_Internal(publisher, stats, metrics_auth).routes(),
        *(
            (r.path, cast(Handler, r.endpoint), sorted(r.methods or {"GET"}), logging.INFO, r.name)
            for r in extra_routes
        ),
    ]
    # The webhook checks its own credentials, after its rate limit (receiver/webhook.py); every
    # other route is served behind its scope (receiver.access.ROUTE_ACCESS: a route missing there
    # is refused here, at start).
    routes: list[BaseRoute] = [
        _route(WEBHOOK_PATH, webhook, ["POST"], logging.INFO, "webhook", stats, monotonic)
    ]
    for path, handler, methods, level, name in others:
        guarded = protect(path, methods, handler, auth)
        routes.append(_route(path, guarded, methods, level, name, stats, monotonic))
    if console is not None:  # the operator console (receiver/console/): acts through extra_routes
        page = partial(_console_page, stats=stats, monotonic=monotonic)
        routes += _with_bare_prefix(console(extra_routes, page))
    return exact_paths(Starlette(exception_handlers={HTTPException: http_error}, routes=routes))


def _console_page(
    path: str, handler: Handler, *, stats: ReceiverMetrics, monotonic: Callable[[], float]
) -> Handler:
    """A console page, instrumented as the receiver's own routes are (:func:`_instrumented`)."""
    return _instrumented(path, handler, logging.INFO, stats, monotonic)


def _route(
    path: str,
    handler: Handler,
    methods: list[str],
    level: int,
    name: str | None,
    stats: ReceiverMetrics,
    monotonic: Callable[[], float],
) -> Route:
    """``handler`` served on ``path``, instrumented (:func:`_instrumented`)."""
    return Route(path, _instrumented(path, handler, level, stats, monotonic), methods=methods, name=name)


class _Internal:
    """``/health``, ``/ready`` (Kafka reachable, the alerts topic there) and ``/metrics``
    (behind its own token, if set)."""

    def __init__(
        self, publisher: AlertPublisher, stats: ReceiverMetrics, metrics_auth: WebhookAuth | None
    ) -> None:
        self._publisher = publisher
        self._stats = stats
        self._metrics_auth = metrics_auth

    def routes(self) -> list[tuple[str, Handler, list[str], int, str]]:
        """(path, handler, methods, log level, name) of each."""
        return [
            ("/health", self.health, ["GET"], logging.DEBUG, "health"),
            ("/ready", self.ready, ["GET"], logging.DEBUG, "ready"),
            ("/metrics", self.metrics, ["GET"], logging.DEBUG, "metrics"),
        ]

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, _: Request) -> Response:
        if await self._publisher.ready():
            return JSONResponse({"status": "ready", "kafka": "ok"})
        return error_response(
            503,
            "not_ready",
            "Kafka is not reachable, or the alerts topic does not exist",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def metrics(self, request: Request) -> Response:
        auth = self._metrics_auth
        if auth is not None and not auth.allows(request.headers.get("authorization")):
            return error_response(
                401,
                "unauthorized",
                "missing or invalid metrics token",
                headers={"WWW-Authenticate": 'Bearer realm="sevflow"'},
            )
        return Response(self._stats.exposition(), media_type=CONTENT_TYPE_LATEST)


_TWO_AUTHORIZATIONS = "more than one Authorization header: send one"


def _two_authorizations(request: Request) -> bool:
    """Whether the request has several Authorization headers. The first one was believed, where
    a proxy in front may check the last: each would let a different credential through."""
    return sum(1 for name, _ in request.scope["headers"] if name == b"authorization") > 1


def _instrumented(
    path: str,
    handler: Handler,
    level: int,
    stats: ReceiverMetrics,
    monotonic: Callable[[], float],
) -> Handler:
    """Request id, duration, the request counter and one log line around ``handler``."""

    # The labelled series of this route, looked up once each rather than on every request.
    counted: dict[tuple[str, int], Counter] = {}
    timed: dict[str, Histogram] = {}

    async def wrapped(request: Request) -> Response:
        request_id = request_id_of(request.headers.get("x-request-id"))
        started = monotonic()
        status = 500
        try:
            try:
                response = (
                    await handler(request)
                    if not _two_authorizations(request)
                    else error_response(400, "ambiguous_credentials", _TWO_AUTHORIZATIONS)
                )
            except HTTPException as exc:  # Starlette's own refusal (a form it cannot read)
                response = await http_error(request, exc)
            except Exception as exc:  # noqa: BLE001 - any bug is still a JSON answer, logged
                response = _internal_error(request_id, exc)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = monotonic() - started
            method = request.method
            if (counter := counted.get((method, status))) is None:
                counter = counted[method, status] = stats.requests.labels(method, path, str(status))
            if (histogram := timed.get(method)) is None:
                histogram = timed[method] = stats.duration.labels(method, path)
            counter.inc()
            histogram.observe(elapsed)
            if log.isEnabledFor(level if status < 500 else logging.WARNING):
                extra = getattr(request.state, "log_extra", "")
                log.log(
                    level if status < 500 else logging.WARNING,
                    "request_id=%s method=%s path=%s status=%d duration_ms=%.1f source=%s %s",
                    request_id,
                    request.method,
                    path,
                    status,
                    elapsed * 1000,
                    request.client.host if request.client else "unknown",
                    extra,
                )

    return wrapped


def create_callbacks_app(
    routes: Sequence[Route],
    *,
    metrics: ReceiverMetrics,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The public listener's app: the vendor callbacks ``routes`` (Slack, PagerDuty) and nothing
    else, every other path 404; with the request ids, logs and metrics of the receiver's own routes
    (pass the receiver's ``metrics``: they are exported on the internal ``/metrics``)."""
    return exact_paths(
        Starlette(
            exception_handlers={HTTPException: http_error},
            routes=[
                Route(
                    r.path,
                    _instrumented(r.path, r.endpoint, logging.INFO, metrics, monotonic),
                    methods=sorted(r.methods or {"GET"}),
                )
                for r in routes
            ],
        )
    )


def _internal_error(request_id: str, exc: Exception) -> Response:
    """500 as JSON like every other refusal, logged with the request id and the traceback's frames
    but not the exception's message: a message can quote a header or a body (a credential)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("request_id=%s unhandled %s\n%s", request_id, type(exc).__name__, frames.rstrip())
    return error_response(
        500,
        "internal_error",
        "unexpected error; quote the request id when reporting it",
        request_id=request_id,
    )


def _with_bare_prefix(mount: BaseRoute) -> list[BaseRoute]:
    """The console's mount, and its prefix without the slash (``/ui``, as a person types it)
    answered 303 to ``/ui/``: paths are exact (:func:`exact_paths`)."""
    if not isinstance(mount, Mount):
        return [mount]
    location = f"{mount.path}/"

    async def moved(_request: Request) -> Response:
        return RedirectResponse(location, 303)

    return [mount, Route(mount.path, moved, methods=["GET"])]


def exact_paths(app: Starlette) -> Starlette:
    """``app`` answering a path with a slash added or missing as any unknown path (404, JSON),
    not with Starlette's bare 307 to the other spelling: that redirect came before any credential
    check, with no request id, log line or metric, and its Location took the caller's ``Host``.
    Routes of one path (GET and POST of ``/api/maintenance``) are served as one, so a 405 names
    every method the path takes (``PUT /api/maintenance`` said ``Allow: GET, HEAD``)."""
    app.router.redirect_slashes = False
    app.router.routes = one_route_per_path(app.router.routes)
    return app


def one_route_per_path(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with the :class:`Route` objects of one path merged into one taking all their
    methods, each method served by its own endpoint; other routes (mounts) as they are."""
    by_path: dict[str, list[Route]] = {}
    for route in routes:
        if isinstance(route, Route):
            by_path.setdefault(route.path, []).append(route)
    merged: list[BaseRoute] = []
    for route in routes:
        if not isinstance(route, Route) or len(same := by_path[route.path]) == 1:
            merged.append(route)
        elif route is same[0]:
            endpoints = {m: cast(Handler, r.endpoint) for r in same for m in r.methods or {"GET"}}
            merged.append(
                Route(route.path, _by_method(endpoints), methods=sorted(endpoints), name=route.name)
            )
    return merged


def _by_method(endpoints: dict[str, Handler]) -> Handler:
    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return dispatch
