"""``POST /api/incidents/{id}/ack|resolve|escalate``: the HTTP API's commands, by a token with the
``write`` scope (its name is the command's actor).

The optional JSON body: ``{"by": "a note", "episode": 2}`` (the incident's ``flaps`` as read), for
resolve also ``root_cause``, ``fix``, ``follow_up``; an escalation requires ``{"to": "manager"}``.
An ``Idempotency-Key`` header makes a retry the same command (applied once).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.events import Actor
from models.incident import RESOLUTION_DETAIL_MAX, RESOLUTION_DETAILS, Command
from models.wire import NotJson, read_json
from receiver.access import principal_of
from receiver.callbacks.common import (
    INCIDENT_ID,
    CallbackContext,
    episode_of,
    keyed_command_id,
    name_of,
    refused_fields,
    unauthorized,
)
from receiver.commands import Action
from receiver.errors import error_response

__all__ = ["API_ACK_PATH", "API_ESCALATE_PATH", "API_RESOLVE_PATH", "api_endpoint"]

API_ACK_PATH = "/api/incidents/{incident_id}/ack"
API_RESOLVE_PATH = "/api/incidents/{incident_id}/resolve"
API_ESCALATE_PATH = "/api/incidents/{incident_id}/escalate"


@dataclass
class _Fields:
    """What the body adds to the command."""

    note: str | None = None
    episode: int | None = None
    details: dict[str, str] = field(default_factory=dict)


def api_endpoint(context: CallbackContext, action: Action) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of ``action`` (served behind the ``write`` scope by receiver/access.py)."""

    async def endpoint(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:  # served without receiver.access.protect: nobody is known
            return unauthorized("Bearer")
        incident_id = request.path_params["incident_id"]
        if not INCIDENT_ID.fullmatch(incident_id):
            return error_response(422, "invalid_incident_id", "not an incident id")
        body = await context.body(request)
        if isinstance(body, Response):
            return body
        # The episode the caller acts on: given in the body, else the one the store showed when
        # the request was checked (receiver/incident_api.py), else not known.
        fields = _fields(body, action, getattr(request.state, "episode", None))
        if isinstance(fields, Response):
            return fields
        key = request.headers.get("idempotency-key")
        command = Command(
            command_id=keyed_command_id(incident_id, action, principal.name, key, body),
            action=action,
            incident_id=incident_id,
            # The token's name acts; the body's "by" is only a note shown beside it.
            actor=Actor(via="api", name=principal.name, note=fields.note),
            requested_at=context.clock(),
            episode=fields.episode,
            to="manager" if action == "escalate" else None,
            **fields.details,
        )
        refused = await context.publish([command], "api")
        if refused is not None:
            return refused
        return JSONResponse(
            {
                "status": "accepted",
                "command_id": command.command_id,
                "incident_id": incident_id,
                "action": action,
            },
            202,
        )

    return endpoint


def _fields(body: bytes, action: Action, episode: int | None) -> _Fields | Response:
    """The body's note, episode (:func:`~receiver.callbacks.common.episode_of`) and resolution
    details, or the 400 / 409 / 422."""
    if not body.strip():
        if action == "escalate":
            return error_response(422, "invalid_body", 'expected {"to": "manager"}')
        return _Fields(episode=episode)
    try:
        document = read_json(body)
    except NotJson as exc:
        return error_response(400, "invalid_json", f"the body is {exc}")
    if not isinstance(document, dict) or not (
        document.get("by") is None or isinstance(document.get("by"), str)
    ):
        return error_response(422, "invalid_body", 'expected {"by": "<a note>"} (optional)')
    refused = refused_fields(document, _TAKES)
    if refused is not None:
        return refused
    fields = _Fields(note=name_of(document.get("by")), episode=episode)
    problem = _resolution_details(document, action, fields.details) or _escalation_to(document, action)
    if problem is not None:
        return error_response(422, "invalid_body", problem)
    given = episode_of(document, episode)
    if isinstance(given, Response):
        return given
    fields.episode = given
    return fields


#: The fields a command's body may name (another is refused by name: receiver.callbacks.common);
#: one that belongs to another command is refused saying which (_resolution_details, _escalation_to).
_TAKES = ("by", "episode", "to", *RESOLUTION_DETAILS)


def _resolution_details(document: dict[str, Any], action: str, details: dict[str, str]) -> str | None:
    """Fill ``details`` with the body's root_cause / fix / follow_up; the problem, if any."""
    for key in RESOLUTION_DETAILS:
        value = document.get(key)
        if value is None:
            continue
        if action != "resolve":
            return f"{key} belongs to a resolution (POST .../resolve)"
        if not isinstance(value, str):
            return f"{key} must be a string"
        if len(value) > RESOLUTION_DETAIL_MAX:
            return f"{key} is longer than {RESOLUTION_DETAIL_MAX} characters"
        details[key] = value
    return None


def _escalation_to(document: dict[str, Any], action: str) -> str | None:
    """The problem with the body's ``to``, if any: required by an escalation (only the manager is
    escalated to by hand), refused elsewhere."""
    to = document.get("to")
    if action != "escalate":
        return None if to is None else "to belongs to an escalation (POST .../escalate)"
    return None if to == "manager" else 'expected {"to": "manager"}'
