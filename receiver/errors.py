"""JSON error responses: every refusal names the problem, never a secret.

Status codes are Alertmanager's retry policy: it retries 5xx and network errors only, so a payload
that can never succeed gets 4xx, and only a transient failure (Kafka down) gets 503 + Retry-After.
"""

from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["body_too_slow", "error_response", "http_error", "validation_details"]


def error_response(
    status: int, error: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON body ``{"error": code, "message": text, ...}`` with the given status."""
    return JSONResponse({"error": error, "message": message, **extra}, status, headers=headers)


def body_too_slow(seconds: float) -> JSONResponse:
    """408 for a body that did not arrive within ``seconds``; the connection is closed with it
    (the rest of the body would otherwise be read as the next request)."""
    return error_response(
        408,
        "request_timeout",
        f"the body did not arrive in full within {seconds:g} s",
        headers={"Connection": "close"},
    )


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Each validation problem as ``{"field": "alerts.0.startsAt", "reason": "..."}``."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        details.append({"field": field, "reason": err["msg"]})
    return details


async def http_error(request: Request, exc: Exception) -> Response:
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
