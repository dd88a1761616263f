"""The receiver's HTTP applications: the internal one (the Alertmanager webhook, ``/health``,
``/ready``, ``/metrics``, the incident API) and the public one of vendor callbacks.

A webhook request passes these steps, in this order, and the first that refuses answers:

1. rate limit per source address → 429 + Retry-After (before auth, so guessing is throttled too);
2. credentials (bearer or basic, constant time) → 401, never saying which part was wrong; a
   credential without the ``webhook`` scope → 403 naming the scope (receiver/access.py);
3. content type ``application/json``, not compressed (no ``Content-Encoding`` but identity) → 415;
4. body size, read at most ``max_body_bytes`` + 1 bytes → 413, within ``body_read_seconds`` → 408;
5. JSON → 400; the version 4 webhook contract → 422 naming each field and reason;
6. every record small enough for Kafka → 413 naming the alert (also when the broker refuses one as
   too large: no retry can help);
7. a turn to publish (at most ``max_concurrent_publishes`` at once, first come first served) within
   ``publish_queue_seconds`` → else 503 + Retry-After (overloaded);
8. Kafka acknowledges every record (``acks=all``) → 200; otherwise 503 + Retry-After. A sender that
   hung up meanwhile is remembered by the publisher so its retry is not written twice.

Status codes are Alertmanager's retry policy: it retries 5xx and network errors only, so only a
transient failure (Kafka) gets 5xx (and a bug: a JSON 500, logged without the exception's message,
which could quote a credential). Every response carries ``X-Request-ID`` (the caller's, when it
sent a sane one) and every webhook request logs one ``key=value`` line with it; no line or body ever
carries a credential.
"""

import asyncio
import logging
import random
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from models.alertmanager import WebhookPayload, to_records
from models.clock import Clock
from receiver.access import Credentials, protect
from receiver.auth import WebhookAuth
from receiver.body import BODY_READ_SECONDS, BodyTooLarge, BodyTooSlow, hung_up, read_capped
from receiver.errors import body_too_slow, error_response, validation_details
from receiver.kafka import (
    MAX_RECORD_BYTES,
    AlertPublisher,
    PublishError,
    RecordTooLarge,
    record_bytes,
)
from receiver.metrics import CONTENT_TYPE_LATEST, ReceiverMetrics
from receiver.ratelimit import RateLimiter, retry_after_header

__all__ = ["RETRY_AFTER_SECONDS", "WEBHOOK_PATH", "create_app", "create_callbacks_app"]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
WEBHOOK_PATH = "/webhooks/alertmanager"

_JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

Handler = Callable[[Request], Awaitable[Response]]

#: Bodies up to this size cannot make a record over ``MAX_RECORD_BYTES``, so their records are not
#: serialised twice to be measured. A record holds its alert's and the payload's strings (never
#: longer than in the body: the body had to escape what the record escapes) plus, without a
#: ``groupKey``, one derived from the labels whose escaping at most doubles them
#: (``models.alertmanager.format_group_key``): at most 3 x the body, plus field names and
#: timestamps (under 1 KiB). tests/unit/test_receiver_http.py checks that bound on hostile bodies.
RECORDS_FIT_BODY_BYTES = (MAX_RECORD_BYTES - 1024) // 3


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
    console: Callable[[Sequence[Route]], BaseRoute] | None = None,
) -> Starlette:
    """Build the receiver; ``publisher``, ``now`` and ``monotonic`` are the seams tests use.

    ``metrics_auth``: the bearer token ``/metrics`` requires (``SEVFLOW_METRICS_TOKEN``); None: open.

    ``extra_routes`` (the incident and admin API) are served beside the webhook, with the same
    request ids, logs and metrics. Every route, these too, is served behind the scope
    :data:`receiver.access.ROUTE_ACCESS` gives it (checked against ``auth``); a route missing there
    raises :class:`receiver.access.RouteWithoutAccess`.
    """
    limiter = rate_limiter or RateLimiter(0, 1)
    stats = metrics or ReceiverMetrics()
    # FIFO admission to Kafka: in a storm, thousands of payloads interleaving their sends would
    # all miss their deadline together; taking turns keeps each one fast.
    slots = asyncio.Semaphore(max_concurrent_publishes)

    def rate_limited(handler: Handler) -> Handler:
        """Step 1, before the credentials are checked: guessing a token is throttled too."""

        async def limited(request: Request) -> Response:
            source = request.client.host if request.client else "unknown"
            wait = limiter.acquire(source, monotonic())
            if wait > 0:
                return error_response(
                    429,
                    "rate_limited",
                    "too many requests from this source",
                    headers={"Retry-After": retry_after_header(wait)},
                )
            return await handler(request)

        return limited

    async def webhook(request: Request) -> Response:
        # Steps 1 and 2 (rate limit, credentials with the webhook scope) ran before: see below.
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return error_response(415, "unsupported_media_type", "the body must be application/json")
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            # Alertmanager never compresses; a compressed body would only read as malformed JSON.
            return error_response(
                415,
                "unsupported_content_encoding",
                f"Content-Encoding {encoding[:64]!r} is not accepted: send the body uncompressed",
            )
        try:
            body = await read_capped(request, max_body_bytes, body_read_seconds)
        except ClientDisconnect:
            return error_response(400, "client_disconnected", "the body was not received in full")
        except BodyTooLarge:
            return error_response(413, "payload_too_large", f"the body exceeds {max_body_bytes} bytes")
        except BodyTooSlow:
            return body_too_slow(body_read_seconds)
        try:
            payload = WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            if any(e["type"] == "json_invalid" for e in errors):
                reason = errors[0]["msg"]
                return error_response(400, "malformed_json", f"the body is not valid JSON: {reason}")
            return error_response(
                422,
                "invalid_payload",
                "the body is not an Alertmanager webhook payload (version 4)",
                details=validation_details(exc),
            )
        records = to_records(payload, now())
        stats.alerts_received.inc(len(records))
        if len(body) > RECORDS_FIT_BODY_BYTES:
            for index, record in enumerate(records):
                if len(record_bytes(record)) > MAX_RECORD_BYTES:
                    return _record_too_large(index)
        try:
            if slots.locked():
                async with asyncio.timeout(publish_queue_seconds):
                    await slots.acquire()
            else:
                await slots.acquire()  # a free slot: taken at once, no deadline to arm
        except TimeoutError:
            stats.alerts_refused.inc(len(records))
            request.state.log_extra = f"alerts={len(records)} reason=overloaded"
            return error_response(
                503,
                "overloaded",
                "too many payloads waiting for Kafka; retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        started = monotonic()
        try:
            result = await publisher.publish(records)
        except RecordTooLarge as exc:  # e.g. the broker's limit is below ours: as permanent
            stats.produce_duration.observe(monotonic() - started)
            request.state.log_extra = f"alerts={len(records)} reason=record_too_large"
            return _record_too_large(exc.index)
        except PublishError as exc:
            stats.produce_duration.observe(monotonic() - started)
            stats.alerts_refused.inc(len(records))
            request.state.log_extra = f"alerts={len(records)} reason={_quote(str(exc))}"
            return error_response(
                503,
                "kafka_unavailable",
                "alerts could not be stored; retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        finally:
            slots.release()
        stats.produce_duration.observe(monotonic() - started)
        if await hung_up(request):
            # The sender gave up (its own deadline) while Kafka was acknowledging: it will retry
            # a payload that is already in the topic.
            publisher.note_unanswered(records)
        deduplicated = result.deduplicated if result is not None else 0
        stats.alerts_produced.inc(len(records) - deduplicated)
        stats.alerts_deduplicated.inc(deduplicated)
        request.state.log_extra = f"alerts={len(records)} deduplicated={deduplicated}"
        # What JSONResponse({"status": "accepted", "alerts": n}) renders, without json.dumps.
        return Response(b'{"status":"accepted","alerts":%d}' % len(records), media_type=_JSON)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        if await publisher.ready():
            return JSONResponse({"status": "ready", "kafka": "ok"})
        return error_response(
            503,
            "not_ready",
            "Kafka is not reachable",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def metrics_endpoint(request: Request) -> Response:
        if metrics_auth is not None and not metrics_auth.allows(request.headers.get("authorization")):
            return error_response(
                401,
                "unauthorized",
                "missing or invalid metrics token",
                headers={"WWW-Authenticate": 'Bearer realm="sevflow"'},
            )
        return Response(stats.exposition(), media_type=CONTENT_TYPE_LATEST)

    def instrumented(path: str, handler: Handler, level: int) -> Handler:
        return _instrumented(path, handler, level, stats, monotonic)

    def served(path: str, handler: Handler, methods: list[str], level: int, name: str | None) -> Route:
        """A route behind its scope (receiver.access.ROUTE_ACCESS: a route missing there is
        refused here, at start), instrumented."""
        guarded = protect(path, methods, handler, auth)
        if path == WEBHOOK_PATH:
            guarded = rate_limited(guarded)
        return Route(path, instrumented(path, guarded, level), methods=methods, name=name)

    return Starlette(
        exception_handlers={HTTPException: _http_error},
        routes=[
            served(WEBHOOK_PATH, webhook, ["POST"], logging.INFO, "webhook"),
            served("/health", health, ["GET"], logging.DEBUG, "health"),
            served("/ready", ready, ["GET"], logging.DEBUG, "ready"),
            served("/metrics", metrics_endpoint, ["GET"], logging.DEBUG, "metrics"),
            *(
                served(
                    r.path,
                    cast(Handler, r.endpoint),
                    sorted(r.methods or {"GET"}),
                    logging.INFO,
                    r.name,
                )
                for r in extra_routes
            ),
            # The operator console (receiver/console/): its own sign-in; acts through extra_routes.
            *([console(extra_routes)] if console is not None else []),
        ],
    )


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
                response = await handler(request)
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
    return Starlette(
        exception_handlers={HTTPException: _http_error},
        routes=[
            Route(
                r.path,
                _instrumented(r.path, r.endpoint, logging.INFO, metrics, monotonic),
                methods=sorted(r.methods or {"GET"}),
            )
            for r in routes
        ],
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take) as JSON, like
    every other answer; its default was a plain-text body."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return error_response(404, "not_found", f"no such path: {path}")
    if exc.status_code == 405:
        allowed = headers.get("Allow", "")
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {path}" + (f" (allowed: {allowed})" if allowed else ""),
            headers=headers,
        )
    return error_response(exc.status_code, "http_error", exc.detail, headers=headers)


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


def _record_too_large(index: int) -> Response:
    """413 naming the alert: no retry can make it fit, so it must not be a 503 (retried for ever)."""
    return error_response(
        413,
        "record_too_large",
        f"alert {index} is larger than Kafka accepts ({MAX_RECORD_BYTES} bytes)",
        details=[{"field": f"alerts.{index}", "reason": "record too large"}],
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
