"""The receiver's HTTP application: ``POST /webhooks/alertmanager``, ``GET /health``, ``GET /ready``.

A webhook payload is authenticated, read up to a size cap, validated as Alertmanager's version 4
payload, turned into one record per alert and written to Kafka. 200 is answered only once Kafka
has acknowledged every record; a broker that is down or slow gives 503 with Retry-After.
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.alertmanager import WebhookPayload, to_records
from receiver.auth import BearerAuth
from receiver.errors import error_response, validation_details
from receiver.kafka import AlertPublisher, PublishError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    """Read the body, stopping as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    publisher: AlertPublisher,
    auth: BearerAuth,
    now: Callable[[], datetime],
    max_body_bytes: int = 1024 * 1024,
) -> Starlette:
    """Build the receiver; ``publisher`` and ``now`` are the seams tests and benchmarks use."""

    async def webhook(request: Request) -> Response:
        if not auth.allows(request.headers.get("authorization")):
            return error_response(
                401,
                "unauthorized",
                "missing or invalid credentials",
                headers={"WWW-Authenticate": 'Bearer realm="sevflow"'},
            )
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return error_response(415, "unsupported_media_type", "the body must be application/json")
        try:
            body = await _read_capped(request, max_body_bytes)
        except _TooLarge:
            return error_response(413, "payload_too_large", f"the body exceeds {max_body_bytes} bytes")
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_response(400, "malformed_json", f"the body is not valid JSON: {exc}")
        try:
            payload = WebhookPayload.model_validate(document)
        except ValidationError as exc:
            return error_response(
                422,
                "invalid_payload",
                "the body is not an Alertmanager webhook payload (version 4)",
                details=validation_details(exc),
            )
        records = to_records(payload, now())
        try:
            await publisher.publish(records)
        except PublishError as exc:
            log.warning("refused %d alerts with 503: %s", len(records), exc)
            return error_response(
                503,
                "kafka_unavailable",
                "alerts could not be stored; retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"status": "accepted", "alerts": len(records)})

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

    return Starlette(
        routes=[
            Route("/webhooks/alertmanager", webhook, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ]
    )
