"""``POST /api/incidents/{id}/notes``: add a note to the incident's timeline, by a token with the
``write`` scope (its name is the note's author), on the same path as ack / resolve / escalate
(receiver/callbacks/api.py): the incident checked first (receiver/incident_api.py
``checked_command``), the commands topic, an ``Idempotency-Key`` header making a retry the same
command, the worker's audit record (``incident.noted``).

Body: ``{"text": "rolled back to v2.3", "by": "optional note on who", "episode": 2}``; the text is
one clean line (models/timeline_notes.py), 422 ``invalid_body`` when missing, empty or longer
than :data:`models.timeline_notes.NOTE_TEXT_MAX` characters once cleaned.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.events import Actor
from models.incident import Command
from models.timeline_notes import NOTE_TEXT_MAX, note_text
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
from receiver.errors import error_response

__all__ = ["API_NOTES_PATH", "note_endpoint"]

API_NOTES_PATH = "/api/incidents/{incident_id}/notes"


def note_endpoint(context: CallbackContext) -> Callable[[Request], Awaitable[Response]]:
    """The notes endpoint (served behind the ``write`` scope by receiver/access.py)."""

    async def endpoint(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:
            return unauthorized("Bearer")
        incident_id = request.path_params["incident_id"]
        if not INCIDENT_ID.fullmatch(incident_id):
            return error_response(422, "invalid_incident_id", "not an incident id")
        body = await context.body(request)
        if isinstance(body, Response):
            return body
        parsed = _parse(body, getattr(request.state, "episode", None))
        if isinstance(parsed, Response):
            return parsed
        text, by, episode = parsed
        key = request.headers.get("idempotency-key")
        command = Command(
            command_id=keyed_command_id(incident_id, "note", principal.name, key, body),
            action="note",
            incident_id=incident_id,
            actor=Actor(via="api", name=principal.name, note=by),
            requested_at=context.clock(),
            episode=episode,
            text=text,
        )
        refused = await context.publish([command], "api")
        if refused is not None:
            return refused
        document = {
            "status": "accepted",
            "command_id": command.command_id,
            "incident_id": incident_id,
            "action": "note",
        }
        return JSONResponse(document, 202)

    return endpoint


def _parse(body: bytes, episode: int | None) -> tuple[str, str | None, int | None] | Response:
    """The text, the ``by`` note and the episode (:func:`~receiver.callbacks.common.episode_of`),
    or the 400 / 409 / 422."""
    try:
        document = read_json(body) if body.strip() else None
    except NotJson as exc:
        return error_response(400, "invalid_json", f"the body is {exc}")
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        return error_response(422, "invalid_body", 'expected {"text": "<the note>"}')
    refused = refused_fields(document, ("text", "by", "episode"))
    if refused is not None:
        return refused
    raw = document["text"]
    text = note_text(raw)
    if text is None:
        return error_response(422, "invalid_body", "the note's text is empty")
    if len(" ".join(raw.split())) > NOTE_TEXT_MAX:
        return error_response(422, "invalid_body", f"the note is longer than {NOTE_TEXT_MAX} characters")
    by = document.get("by")
    if by is not None and not isinstance(by, str):
        return error_response(422, "invalid_body", "by must be a string")
    given = episode_of(document, episode)
    if isinstance(given, Response):
        return given
    return text, name_of(by), given
