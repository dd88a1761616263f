"""The Alertmanager webhook: :class:`WebhookHandler`, one method per step of a request.

A webhook request passes these steps, in this order, and the first that refuses answers:

1. :meth:`~WebhookHandler.auth`: the rate limit per source address → 429 + Retry-After (before the
   credentials, so guessing is throttled too); then the credentials (bearer or basic, constant
   time) → 401, never saying which part was wrong; a credential without the ``webhook`` scope →
   403 naming the scope (receiver/access.py);
2. :meth:`~WebhookHandler.size`: content type ``application/json``, not compressed (no
   ``Content-Encoding`` but identity) → 415; the body, read at most ``max_body_bytes`` + 1 bytes →
   413, within ``body_read_seconds`` → 408;
3. :meth:`~WebhookHandler.parse`: JSON → 400; the version 4 webhook contract → 422 naming each
   field and reason (one pass: pydantic reads the JSON into the model);
4. :meth:`~WebhookHandler.validate`: every record small enough for Kafka → 413 naming the alert;
5. :meth:`~WebhookHandler.admit`: a turn to publish (at most ``max_concurrent_publishes`` at once,
   first come first served) within ``publish_queue_seconds`` → else 503 + Retry-After (overloaded);
6. :meth:`~WebhookHandler.publish`: Kafka acknowledges every record (``acks=all``); otherwise 503 +
   Retry-After, or 413 naming the alert when the broker refuses one as too large (no retry helps);
7. :meth:`~WebhookHandler.answer`: 200 with the number of alerts. A sender that hung up meanwhile
   is remembered by the publisher so its retry is not written twice.

Status codes are Alertmanager's retry policy: it retries 5xx and network errors only, so only a
transient failure (Kafka) gets 5xx. The request id, the request's log line and its metrics are
added around the handler by :func:`receiver.app.create_app`; ``request.state.log_extra`` is this
handler's part of that line. No line or body ever carries a credential.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from models.clock import Clock
from receiver.access import ROUTE_ACCESS, Credentials, RouteWithoutAccess, authorize
from receiver.body import BODY_READ_SECONDS, BodyTooLarge, BodyTooSlow, hung_up, read_capped
from receiver.errors import body_too_slow, error_response, validation_details
from receiver.kafka import (
    MAX_RECORD_BYTES,
    AlertPublisher,
    PublishError,
    PublishResult,
    RecordTooLarge,
    record_bytes,
)
from receiver.metrics import ReceiverMetrics
from receiver.ratelimit import RateLimiter, retry_after_header

__all__ = [
    "RECORDS_FIT_BODY_BYTES",
    "RETRY_AFTER_SECONDS",
    "WEBHOOK_PATH",
    "WebhookHandler",
    "WebhookLimits",
]

RETRY_AFTER_SECONDS = 5
WEBHOOK_PATH = "/webhooks/alertmanager"

_JSON = "application/json"

#: Bodies up to this size cannot make a record over ``MAX_RECORD_BYTES``, so their records are not
#: serialised twice to be measured. A record holds its alert's and the payload's strings (never
#: longer than in the body: the body had to escape what the record escapes) plus, without a
#: ``groupKey``, one derived from the labels whose escaping at most doubles them
#: (``models.alertmanager.format_group_key``): at most 3 x the body, plus field names and
#: timestamps (under 1 KiB). tests/unit/test_receiver_http.py checks that bound on hostile bodies.
RECORDS_FIT_BODY_BYTES = (MAX_RECORD_BYTES - 1024) // 3


@dataclass(frozen=True)
class WebhookLimits:
    """How much a webhook request may ask of the receiver (``create_app``'s arguments)."""

    max_body_bytes: int = 1024 * 1024
    body_read_seconds: float = BODY_READ_SECONDS
    max_concurrent_publishes: int = 64
    publish_queue_seconds: float = 5.0


class _Refused(Exception):
    """A step's refusal: ``response`` is the answer; the steps after it do not run."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class WebhookHandler:
    """The webhook endpoint (an ASGI request handler): the steps of the module docstring, in order.

    Each step either returns what the next one needs or raises :class:`_Refused` with its answer.
    """

    def __init__(
        self,
        *,
        publisher: AlertPublisher,
        credentials: Credentials,
        now: Clock,
        limiter: RateLimiter,
        stats: ReceiverMetrics,
        limits: WebhookLimits = WebhookLimits(),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        access = ROUTE_ACCESS.get(("POST", WEBHOOK_PATH))
        if access is None:  # default deny, as receiver.access.protect
            raise RouteWithoutAccess(f"POST {WEBHOOK_PATH} is not in receiver.access.ROUTE_ACCESS")
        self._access = access
        self._publisher = publisher
        self._credentials = credentials
        self._now = now
        self._limiter = limiter
        self._stats = stats
        self._limits = limits
        self._monotonic = monotonic
        # FIFO admission to Kafka: in a storm, thousands of payloads interleaving their sends
        # would all miss their deadline together; taking turns keeps each one fast.
        self._slots = asyncio.Semaphore(limits.max_concurrent_publishes)

    async def __call__(self, request: Request) -> Response:
        try:
            self.auth(request)
            body = await self.size(request)
            payload = self.parse(body)
            records = self.validate(payload, len(body))
            await self.admit(request, len(records))
            result = await self.publish(request, records)
        except _Refused as refused:
            return refused.response
        return await self.answer(request, records, result)

    def auth(self, request: Request) -> None:
        """Step 1: the rate limit per source (429), then the credentials and scope (401, 403)."""
        source = request.client.host if request.client else "unknown"
        wait = self._limiter.acquire(source, self._monotonic())
        if wait > 0:
            raise _Refused(
                error_response(
                    429,
                    "rate_limited",
                    "too many requests from this source",
                    headers={"Retry-After": retry_after_header(wait)},
                )
            )
        refused = authorize(request, self._access, self._credentials)
        if refused is not None:
            raise _Refused(refused)

    async def size(self, request: Request) -> bytes:
        """Step 2: an uncompressed JSON body (415) of at most ``max_body_bytes`` (413), received in
        full (400) within ``body_read_seconds`` (408)."""
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != _JSON:
            raise _Refused(
                error_response(415, "unsupported_media_type", "the body must be application/json")
            )
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            # Alertmanager never compresses; a compressed body would only read as malformed JSON.
            raise _Refused(
                error_response(
                    415,
                    "unsupported_content_encoding",
                    f"Content-Encoding {encoding[:64]!r} is not accepted: send the body uncompressed",
                )
            )
        limit, seconds = self._limits.max_body_bytes, self._limits.body_read_seconds
        try:
            return await read_capped(request, limit, seconds)
        except ClientDisconnect:
            message = "the body was not received in full"
            raise _Refused(error_response(400, "client_disconnected", message)) from None
        except BodyTooLarge:
            message = f"the body exceeds {limit} bytes"
            raise _Refused(error_response(413, "payload_too_large", message)) from None
        except BodyTooSlow:
            raise _Refused(body_too_slow(seconds)) from None

    def parse(self, body: bytes) -> WebhookPayload:
        """Step 3: JSON (400) that is an Alertmanager webhook payload, version 4 (422)."""
        try:
            return WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            if any(e["type"] == "json_invalid" for e in errors):
                reason = errors[0]["msg"]
                message = f"the body is not valid JSON: {reason}"
                raise _Refused(error_response(400, "malformed_json", message)) from None
            raise _Refused(
                error_response(
                    422,
                    "invalid_payload",
                    "the body is not an Alertmanager webhook payload (version 4)",
                    details=validation_details(exc),
                )
            ) from None

    def validate(self, payload: WebhookPayload, body_bytes: int) -> list[AlertRecord]:
        """Step 4: the payload's records, each small enough for Kafka (413 naming the alert)."""
        records = to_records(payload, self._now())
        self._stats.alerts_received.inc(len(records))
        if body_bytes > RECORDS_FIT_BODY_BYTES:
            for index, record in enumerate(records):
                if len(record_bytes(record)) > MAX_RECORD_BYTES:
                    raise _Refused(record_too_large(index))
        return records

    async def admit(self, request: Request, alerts: int) -> None:
        """Step 5: a turn to publish within ``publish_queue_seconds``, else 503 (overloaded).

        The turn taken here is given back by :meth:`publish`."""
        try:
            if self._slots.locked():
                async with asyncio.timeout(self._limits.publish_queue_seconds):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()  # a free slot: taken at once, no deadline to arm
        except TimeoutError:
            self._stats.alerts_refused.inc(alerts)
            request.state.log_extra = f"alerts={alerts} reason=overloaded"
            raise _Refused(
                error_response(
                    503,
                    "overloaded",
                    "too many payloads waiting for Kafka; retry later",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            ) from None

    async def publish(self, request: Request, records: list[AlertRecord]) -> PublishResult | None:
        """Step 6: Kafka acknowledges every record; else 503, or 413 for a record it refuses as too
        large (e.g. the broker's limit is below ours: permanent). Gives back :meth:`admit`'s turn."""
        started = self._monotonic()
        try:
            result = await self._publisher.publish(records)
        except RecordTooLarge as exc:
            request.state.log_extra = f"alerts={len(records)} reason=record_too_large"
            raise _Refused(record_too_large(exc.index)) from None
        except PublishError as exc:
            self._stats.alerts_refused.inc(len(records))
            request.state.log_extra = f"alerts={len(records)} reason={_quote(str(exc))}"
            raise _Refused(
                error_response(
                    503,
                    "kafka_unavailable",
                    "alerts could not be stored; retry later",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            ) from None
        finally:
            self._slots.release()
            self._stats.produce_duration.observe(self._monotonic() - started)
        return result

    async def answer(
        self, request: Request, records: list[AlertRecord], result: PublishResult | None
    ) -> Response:
        """Step 7: 200 ``{"status": "accepted", "alerts": n}``; a sender that hung up while Kafka
        acknowledged is noted, so its retry of a payload already in the topic is not written twice."""
        if await hung_up(request):
            self._publisher.note_unanswered(records)
        deduplicated = result.deduplicated if result is not None else 0
        self._stats.alerts_produced.inc(len(records) - deduplicated)
        self._stats.alerts_deduplicated.inc(deduplicated)
        request.state.log_extra = f"alerts={len(records)} deduplicated={deduplicated}"
        # What JSONResponse({"status": "accepted", "alerts": n}) renders, without json.dumps.
        return Response(b'{"status":"accepted","alerts":%d}' % len(records), media_type=_JSON)


def record_too_large(index: int) -> Response:
    """413 naming the alert: no retry can make it fit, so it must not be a 503 (retried for ever)."""
    return error_response(
        413,
        "record_too_large",
        f"alert {index} is larger than Kafka accepts ({MAX_RECORD_BYTES} bytes)",
        details=[{"field": f"alerts.{index}", "reason": "record too large"}],
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
