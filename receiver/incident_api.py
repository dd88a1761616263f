"""The read side of the Incident API: list and show incidents, and the API's OpenAPI document.

::

    GET /api/incidents               filters: state, severity, service, since, until;
                                     pagination: limit (1-500, default 50) + cursor (next_cursor)
    GET /api/incidents/{incident_id} the incident with its timeline and alerts
    GET /api/openapi.yaml            receiver/openapi.yaml (public: it describes, it reveals nothing)

With ``commands``, the API's ``POST /api/incidents/{id}/ack`` and ``/resolve`` (built by
:mod:`receiver.callbacks`) are served behind a look-up of the incident: 404 when there is none, 409
to acknowledge a resolved one, 200 ``unchanged`` when it is already in that state; only then is
the command queued (202).

Incident routes need ``Authorization: Bearer <token>`` of a ``SEVFLOW_API_TOKENS`` token with the
``read`` scope (the commands: ``write``; receiver/access.py) and answer errors as the receiver
does, ``{"error": code, "message": text}``: 401 bad credentials, 403 a missing scope (named), 400 a
bad query parameter (named), 404 an unknown incident, 503 when the store cannot be read
(transient: retry). Lists are newest first with keyset pagination (see
:mod:`analytics.incidents`), so paging never repeats or skips.
"""

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from analytics.incidents import (
    MAX_PAGE_SIZE,
    CursorError,
    IncidentFilter,
    find_incidents,
    load_incident,
)
from models.events import IncidentState
from models.incident import Incident
from models.severity import Severity
from receiver.callbacks.common import INCIDENT_ID
from receiver.commands import Action, precheck
from receiver.errors import error_response
from store.incidents import IncidentStore

__all__ = [
    "API_COMMAND_ROUTES",
    "INCIDENTS_PATH",
    "INCIDENT_PATH",
    "OPENAPI_DOCUMENT",
    "OPENAPI_PATH",
    "checked_command",
    "incident_routes",
]

log = logging.getLogger(__name__)

INCIDENTS_PATH = "/api/incidents"
INCIDENT_PATH = "/api/incidents/{incident_id}"
OPENAPI_PATH = "/api/openapi.yaml"
#: The committed document, shipped with the package (``receiver/openapi.yaml``).
OPENAPI_DOCUMENT = Path(__file__).resolve().parent / "openapi.yaml"

DEFAULT_PAGE_SIZE = 50
_PAGE_SIZE = re.compile(r"[0-9]{1,9}")
RETRY_AFTER_SECONDS = 5

Handler = Callable[[Request], Awaitable[Response]]


class _BadParameter(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _BadParameter(name, "not an RFC 3339 time (e.g. 2026-11-27T14:30:00Z)") from None
    if moment.tzinfo is None:
        raise _BadParameter(name, "the time needs a zone (Z or +hh:mm)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise _BadParameter(name, "out of range once converted to UTC") from None


def _choice(name: str, value: str | None, choices: type[IncidentState] | type[Severity]) -> Any:
    if value is None:
        return None
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise _BadParameter(name, f"must be one of {allowed}") from None


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not _PAGE_SIZE.fullmatch(value) or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise _BadParameter("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(value)


def _filter_of(params: Any) -> IncidentFilter:
    """The list filter from query parameters; raises :class:`_BadParameter` naming the field."""
    since = _time("since", params.get("since"))
    until = _time("until", params.get("until"))
    if since is not None and until is not None and since >= until:
        raise _BadParameter("until", "must be after since")
    return IncidentFilter(
        state=_choice("state", params.get("state"), IncidentState),
        severity=_choice("severity", params.get("severity"), Severity),
        service=params.get("service") or None,
        team=params.get("team") or None,
        since=since,
        until=until,
    )


def _incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as the API shows it: the ``incident`` object of the incident-events schema,
    with ``held_from_status_page`` and ``runbook`` always present (the events write them only
    when true, or matched)."""
    shown = incident.snapshot().model_dump(mode="json")
    shown["held_from_status_page"] = incident.held_from_status_page
    shown["runbook"] = incident.runbook.model_dump(mode="json") if incident.runbook else None
    shown["team"] = incident.team
    return shown


def incident_routes(
    engine: AsyncEngine,
    *,
    openapi_document: Path = OPENAPI_DOCUMENT,
    commands: Sequence[Route] = (),
) -> list[Route]:
    """The routes to mount into the receiver's Starlette app (``routes=[..., *incident_routes(…)]``).

    ``commands`` are the API's acknowledge / resolve routes (``api_ack`` and ``api_resolve`` of
    :func:`receiver.callbacks.callback_routes`); they are returned behind a look-up of the
    incident (:func:`checked_command`).

    The routes check no credentials themselves: the receiver serves every route behind the scope
    :data:`receiver.access.ROUTE_ACCESS` gives it (``read`` for the GETs, ``write`` for the
    commands); :func:`receiver.access.protect_all` does the same for a test's app."""
    try:
        document: bytes | None = openapi_document.read_bytes()  # once, at start-up
    except OSError:
        log.warning("OpenAPI document %s not found: %s answers 404", openapi_document, OPENAPI_PATH)
        document = None
    reads = _Reads(engine, document)
    return [
        *(checked_command(route, engine) for route in commands),
        Route(INCIDENTS_PATH, _guarded(reads.list_incidents), methods=["GET"], name="api_incidents"),
        Route(INCIDENT_PATH, _guarded(reads.show_incident), methods=["GET"], name="api_incident"),
        Route(OPENAPI_PATH, reads.openapi, methods=["GET"], name="api_openapi"),
    ]


def _guarded(handler: Handler) -> Handler:
    """``handler`` with its refusals as JSON: 400 for a bad query parameter, 503 when the store
    cannot be read."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except _BadParameter as exc:
            return error_response(
                400,
                "invalid_parameter",
                f"invalid query parameter {exc.name}: {exc.reason}",
                details=[{"field": exc.name, "reason": exc.reason}],
            )
        except SQLAlchemyError as exc:
            log.warning("incident API cannot read the store: %s", type(exc).__name__)
            return error_response(
                503,
                "store_unavailable",
                "the incident store cannot be read; retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    return wrapped


class _Reads:
    """The read routes' handlers: the incident list, one incident, the OpenAPI document."""

    def __init__(self, engine: AsyncEngine, document: bytes | None) -> None:
        self._engine = engine
        self._document = document

    async def list_incidents(self, request: Request) -> Response:
        criteria = _filter_of(request.query_params)
        limit = _limit(request.query_params.get("limit"))
        try:
            page = await find_incidents(
                self._engine, criteria, limit=limit, cursor=request.query_params.get("cursor")
            )
        except CursorError:
            raise _BadParameter("cursor", "not a cursor this API issued") from None
        return JSONResponse(
            {
                "incidents": [_incident_json(i) for i in page.incidents],
                "next_cursor": page.next_cursor,
            }
        )

    async def show_incident(self, request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        detail = await load_incident(self._engine, incident_id)
        if detail is None:
            return error_response(404, "not_found", f"no incident {incident_id}")
        return JSONResponse(
            {
                "incident": _incident_json(detail.incident),
                "timeline": [e.model_dump(mode="json") for e in detail.timeline],
                "alerts": [a.model_dump(mode="json") for a in detail.alerts],
            }
        )

    async def openapi(self, _: Request) -> Response:
        if self._document is None:
            return error_response(404, "not_found", "the OpenAPI document is not installed")
        return Response(self._document, media_type="application/yaml")


#: The names :func:`receiver.callbacks.callback_routes` gives the API's command routes.
API_COMMAND_ROUTES: dict[str, Action] = {
    "api_ack": "acknowledge",
    "api_resolve": "resolve",
    "api_escalate": "escalate",
    "api_note": "note",
}


def checked_command(route: Route, engine: AsyncEngine) -> Route:
    """``route`` (``api_ack`` / ``api_resolve``) answering from the store what the worker would
    otherwise drop without a word, before anything is published:

    - 404 ``not_found``: no such incident;
    - 409 ``incident_resolved``: acknowledging (or escalating) a resolved incident;
    - 200 ``{"status": "unchanged", "state": …}``: already acknowledged / resolved (nothing is
      queued; a retry of a request that was applied gets this, so the command stays idempotent).

    Only an authorised request reaches this (the receiver checks the ``write`` scope first), so no
    one learns which ids exist without a token.
    When the store cannot be read the command goes through unchecked: acknowledging must work
    while the database is in trouble; the worker applies it once the store is back.
    """
    action = API_COMMAND_ROUTES.get(route.name)
    if action is None:
        raise ValueError(f"not an incident command route: {route.name}")
    endpoint = cast(Handler, route.endpoint)
    store = IncidentStore(engine)

    async def checked(request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        if not INCIDENT_ID.fullmatch(incident_id):  # the command routes' own rule
            return await endpoint(request)  # its 422 for a malformed id
        try:
            incident = await store.get(incident_id)
        except SQLAlchemyError as exc:
            log.warning(
                "incident API cannot check %s (%s): %s queued unchecked",
                incident_id,
                type(exc).__name__,
                action,
            )
            return await endpoint(request)
        check = precheck(incident_id, incident, action)
        if check.verdict == "unknown":
            return error_response(404, "not_found", check.message)
        if check.verdict == "refused":
            return error_response(409, "incident_resolved", check.message)
        if check.verdict == "unchanged":
            assert check.state is not None
            return JSONResponse(
                {
                    "status": "unchanged",
                    "incident_id": incident_id,
                    "action": action,
                    "state": check.state.value,
                    "message": check.message,
                }
            )
        assert incident is not None  # (precheck: "unknown" otherwise)
        request.state.episode = incident.flaps  # the episode it acts on: refused once reopened
        return await endpoint(request)

    return Route(route.path, checked, methods=sorted(route.methods or {"POST"}), name=route.name)
