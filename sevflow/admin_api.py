"""The admin API: what ``sevflow maintenance`` and ``sevflow dlq`` do, over HTTP, for tokens with
the ``admin`` scope (receiver/access.py checks it; the token's name is the actor recorded in the
audit log). The operations themselves are sevflow/admin.py's, shared with the CLI.

::

    GET  /api/maintenance                  windows ending after now (?all=true: past ones too)
    POST /api/maintenance                  {"matchers": [...], "end": "+2h", "start": "now",
                                            "comment": "...", "force": false, "by": "a note"}
                                           201 the window; 422 needs_force naming why
    POST /api/maintenance/{window_id}/end  200 the window, ended now; 404 unknown
    GET  /api/dlq                          dead letters (?sink=, ?limit=)
    POST /api/dlq/replay                   {"sink": ..., "events": [...]} → counts
    GET  /api/quarantine                   quarantined records (?source=, ?limit=)
    POST /api/quarantine/replay            {"source": ..., "positions": [...]} → count

Kafka or the store unreachable: 503 + Retry-After, as the rest of the receiver answers.
"""

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.clock import Clock
from models.notes import clean_note
from models.settings import Settings
from models.wire import NotJson, read_json, unknown_fields
from receiver.access import principal_of
from receiver.body import BODY_READ_SECONDS, BodyTooLarge, BodyTooSlow, read_capped
from receiver.errors import body_too_slow, error_response
from sevflow.admin import (
    NeedsForce,
    Who,
    create_window,
    end_window,
    new_window,
    replay_dead_letters,
    replay_quarantined,
    window_json,
)
from sevflow.commands.maintenance import parse_when
from sinks.dlq import StoreUnreadable, dlq_list_async
from store.maintenance import MaintenanceStore
from streams.quarantine import quarantine_list_async

__all__ = ["admin_routes"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
RETRY_AFTER_SECONDS = 5
MAX_BODY_BYTES = 64 * 1024
_LIMIT = re.compile(r"[0-9]{1,4}")


class _Invalid(ValueError):
    """A request that can never succeed as sent: 422 with the message."""


def _who(request: Request, note: object = None) -> Who:
    principal = principal_of(request)
    assert principal is not None  # served behind receiver.access.protect (admin scope)
    return Who(principal.name, "api", clean_note(note))


async def _document(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object, of ``fields`` only: a field the route does not take is refused
    by name rather than ignored (a replay whose misspelt ``positions`` was ignored replayed every
    record)."""
    body = await read_capped(request, MAX_BODY_BYTES, BODY_READ_SECONDS)
    if not body.strip():
        return {}
    try:
        document = read_json(body)
    except NotJson as exc:
        raise _Invalid(f"the body is {exc}") from None
    if not isinstance(document, dict):
        raise _Invalid("the body must be a JSON object")
    if (unknown := unknown_fields(document, fields)) is not None:
        raise _Invalid(unknown)
    return document


def _strings(document: dict[str, Any], key: str) -> list[str] | None:
    """``document[key]`` as a list of strings; None when the key is left out. A ``null`` is
    refused: left out, a replay's ``events`` or ``positions`` means every record, and a null
    read the same way replayed everything for a client that meant nothing."""
    if key not in document:
        return None
    value = document[key]
    if value is None:
        raise _Invalid(f"{key} must be a list of strings (leave it out for every one)")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"{key} must be a list of strings")
    return value


def _string(document: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = document.get(key, default)
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"{key} must be a string")
    return value


def _limit(request: Request) -> int:
    value = request.query_params.get("limit", "100")
    if not _LIMIT.fullmatch(value) or not 1 <= int(value) <= 1000:
        raise _Invalid("limit must be an integer from 1 to 1000")
    return int(value)


def admin_routes(settings: Settings, engine: AsyncEngine, *, clock: Clock) -> list[Route]:
    """The admin API's routes, to serve through :func:`receiver.app.create_app`."""
    admin = _Admin(settings, engine, clock)
    return [
        Route("/api/maintenance", _answering(admin.list_windows), methods=["GET"], name="maintenance"),
        Route(
            "/api/maintenance", _answering(admin.add_window), methods=["POST"], name="maintenance_add"
        ),
        Route(
            "/api/maintenance/{window_id}/end", _answering(admin.end), methods=["POST"], name="maint_end"
        ),
        Route("/api/dlq", _answering(admin.dead_letters), methods=["GET"], name="dlq"),
        Route("/api/dlq/replay", _answering(admin.replay), methods=["POST"], name="dlq_replay"),
        Route("/api/quarantine", _answering(admin.quarantined), methods=["GET"], name="quarantine"),
        Route(
            "/api/quarantine/replay",
            _answering(admin.replay_quarantine),
            methods=["POST"],
            name="quarantine_replay",
        ),
    ]


def _answering(handler: Handler) -> Handler:
    """``handler`` with its refusals as JSON: 422 for a request that can never succeed, 503 +
    Retry-After when the store or Kafka cannot be reached."""

    async def answered(request: Request) -> Response:
        try:
            return await handler(request)
        except NeedsForce as exc:
            return error_response(422, "needs_force", str(exc), problems=exc.problems)
        except (_Invalid, ValidationError) as exc:
            reason = (
                "; ".join(e["msg"] for e in exc.errors(include_url=False, include_input=False))
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            return error_response(422, "invalid_request", reason)
        except BodyTooLarge:
            return error_response(413, "too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
        except BodyTooSlow:
            return body_too_slow(BODY_READ_SECONDS)
        except ClientDisconnect:  # (a 500 with a traceback: the sender is gone, nobody reads this)
            return error_response(400, "client_disconnected", "the body was not received in full")
        except (SQLAlchemyError, StoreUnreadable, KafkaError, OSError, TimeoutError) as exc:
            log.warning("admin API: %s unavailable (%s)", request.url.path, type(exc).__name__)
            return error_response(
                503,
                "unavailable",
                "the store or Kafka cannot be reached; retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    return answered


class _Admin:
    """The admin routes' handlers, on the configured store and Kafka."""

    def __init__(self, settings: Settings, engine: AsyncEngine, clock: Clock) -> None:
        self._settings = settings
        self._engine = engine
        self._clock = clock

    async def list_windows(self, request: Request) -> Response:
        now = self._clock()
        everything = request.query_params.get("all") in ("1", "true")
        windows = await MaintenanceStore(self._engine).listing(since=None if everything else now)
        return JSONResponse({"windows": [window_json(w, now) for w in windows]})

    async def add_window(self, request: Request) -> Response:
        document = await _document(request, ("matchers", "start", "end", "comment", "force", "by"))
        now = self._clock()
        matchers = _strings(document, "matchers")
        end = _string(document, "end")
        if not matchers or end is None:
            raise _Invalid('matchers (a non-empty list) and end (e.g. "+2h") are required')
        force = document.get("force", False)
        if not isinstance(force, bool):
            raise _Invalid("force must be true or false")
        who = _who(request, document.get("by"))
        try:
            starts = parse_when(_string(document, "start", "now") or "now", now)
            ends = parse_when(end, now)
        except ValueError as exc:  # (its message names the value and the forms it takes)
            raise _Invalid(str(exc)) from None
        window = new_window(matchers, starts, ends, _string(document, "comment", "") or "", who)
        forced = await create_window(
            self._engine,
            window,
            force=force,
            max_hours=self._settings.maintenance_max_hours,
            who=who,
            now=now,
        )
        return JSONResponse({"window": window_json(window, now), "forced": forced}, 201)

    async def end(self, request: Request) -> Response:
        window_id = request.path_params["window_id"]
        now = self._clock()
        ended = await end_window(self._engine, window_id, who=_who(request), now=now)
        if ended is None:
            return error_response(404, "not_found", f"no window {window_id[:64]}")
        return JSONResponse({"window": window_json(ended, now)})

    async def dead_letters(self, request: Request) -> Response:
        letters = await dlq_list_async(
            self._settings, sink=request.query_params.get("sink"), limit=_limit(request)
        )
        return JSONResponse({"dead_letters": [x.model_dump(mode="json") for x in letters]})

    async def replay(self, request: Request) -> Response:
        document = await _document(request, ("sink", "events", "by"))
        replayed = await replay_dead_letters(
            self._settings,
            self._engine,
            sink=_string(document, "sink"),
            event_ids=_strings(document, "events"),
            who=_who(request, document.get("by")),
            now=self._clock(),
        )
        return JSONResponse({"letters": replayed.letters, "later": replayed.later})

    async def quarantined(self, request: Request) -> Response:
        records = await quarantine_list_async(
            self._settings, source=request.query_params.get("source"), limit=_limit(request)
        )
        return JSONResponse({"records": [r.model_dump(mode="json") for r in records]})

    async def replay_quarantine(self, request: Request) -> Response:
        document = await _document(request, ("source", "positions", "by"))
        sent = await replay_quarantined(
            self._settings,
            self._engine,
            source=_string(document, "source"),
            positions=_strings(document, "positions"),
            who=_who(request, document.get("by")),
            now=self._clock(),
        )
        return JSONResponse({"records": sent})
