"""Publishing an incident on the public status page by hand: the only way a held security or
data-breach incident gets there (README "What becomes public").

::

    POST /api/incidents/{incident_id}/statuspage/publish   {"title": "…", "body": "…", "by": "…"}

``title`` (at most 255 characters) and ``body`` (at most 5,000) are the public words, exactly as
the operator writes them; ``by`` is an optional note shown beside the actor, the token's name
(the ``admin`` scope is required, receiver/access.py). The request becomes a ``publish``
:class:`models.incident.Command` on the commands topic; the worker applies it (an incident
published with these words already changes nothing) and emits ``statuspage_published``, which
the status-page sinks show.

Answers: 202 queued; 200 ``unchanged`` when the incident shows these words already; 401 bad
credentials; 404 no such incident; 422 a missing or over-long title or body, or a malformed id;
503 + ``Retry-After`` when Kafka did not take the command. The command id is derived from the
incident and the words, so a retried request is applied once. When the store cannot be read the
command is queued unchecked (the worker drops one for an unknown incident).
"""

import hashlib
import logging
from datetime import datetime

from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.clock import Clock
from models.events import Actor
from models.incident import PUBLIC_BODY_MAX, PUBLIC_TITLE_MAX, Command, public_words_problem
from models.notes import clean_note
from models.wire import NotJson, read_json, unknown_fields
from receiver.access import principal_of
from receiver.body import BODY_READ_SECONDS, BodyTooLarge, BodyTooSlow, read_capped
from receiver.callbacks.common import INCIDENT_ID, CommandSink
from receiver.errors import body_too_slow, error_response
from store.incidents import IncidentStore

__all__ = ["PUBLISH_PATH", "publish_command", "publish_route"]

log = logging.getLogger(__name__)

PUBLISH_PATH = "/api/incidents/{incident_id}/statuspage/publish"
#: Bodies beyond this are refused before parsing (the words are at most ~5 KB).
_BODY_MAX = 64 * 1024
RETRY_AFTER_SECONDS = 5


#: The words a status page shows before anything is published, or when the store was not read.
NOTHING_SHOWN: tuple[str | None, str | None] = (None, None)


def publish_command(
    incident_id: str,
    title: str,
    body: str,
    actor: Actor,
    now: datetime,
    source: str,
    shown: tuple[str | None, str | None] = NOTHING_SHOWN,
) -> Command:
    """The ``publish`` command for these words; its id is derived from the incident, the words
    and the words ``shown`` when the request was checked, so the same request repeated (a
    retry, a second click) is applied once, while going back to earlier words (A, then B, then
    A again) is a change of its own: with the words alone its id was the first A's, and the
    worker dropped it as done while the page went on showing B."""
    parts = (incident_id, title, body, *(word if word is not None else "\x01" for word in shown))
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return Command(
        command_id=f"{source}:publish:{digest}",
        action="publish",
        incident_id=incident_id,
        actor=actor,
        requested_at=now,
        public_title=title,
        public_body=body,
    )


def _words(document: object) -> tuple[str, str, str | None] | str:
    """``(title, body, by)`` from the request, or what is wrong with it."""
    if not isinstance(document, dict):
        return 'expected {"title": "…", "body": "…"}'
    if (unknown := unknown_fields(document, ("body", "by", "title"))) is not None:
        return unknown
    title, body, by = document.get("title"), document.get("body"), document.get("by")
    if not isinstance(title, str) or not title.strip():
        return "title: the public title is required"
    if not isinstance(body, str) or not body.strip():
        return "body: the public text is required"
    if len(title.strip()) > PUBLIC_TITLE_MAX:
        return f"title: at most {PUBLIC_TITLE_MAX} characters"
    if len(body.strip()) > PUBLIC_BODY_MAX:
        return f"body: at most {PUBLIC_BODY_MAX} characters"
    if by is not None and not isinstance(by, str):
        return "by: a name"
    problem = public_words_problem(title, body)
    if problem is not None:
        return problem
    return title.strip(), body.strip(), clean_note(by)


def publish_route(
    engine: AsyncEngine,
    publisher: CommandSink,
    *,
    clock: Clock,
) -> Route:
    """``POST /api/incidents/{id}/statuspage/publish``, to mount beside the incident API, behind
    the ``admin`` scope the receiver checks (receiver/access.py: the token's name is the actor)."""
    handler = _Publish(IncidentStore(engine), publisher, clock)
    return Route(PUBLISH_PATH, handler.endpoint, methods=["POST"], name="api_statuspage_publish")


class _Publish:
    """The route's handler: who asks, the words, the incident as the store has it, the command."""

    def __init__(self, store: IncidentStore, publisher: CommandSink, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock

    async def endpoint(self, request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:  # served without receiver.access.protect: nobody is known
            return error_response(
                401,
                "unauthorized",
                "missing or invalid credentials",
                headers={"WWW-Authenticate": 'Bearer realm="sevflow"'},
            )
        incident_id = request.path_params["incident_id"]
        if not INCIDENT_ID.fullmatch(incident_id):
            return error_response(422, "invalid_incident_id", "not an incident id")
        words = await _read_words(request)
        if isinstance(words, Response):
            return words
        title, body, by = words
        shown = await self._shown(incident_id, title, body)
        if isinstance(shown, Response):
            return shown
        # The token's name acts; the body's "by" is only a note shown beside it.
        actor = Actor(via="api", name=principal.name, note=by)
        command = publish_command(incident_id, title, body, actor, self._clock(), "api", shown)
        return await self._queue(command)

    async def _shown(
        self, incident_id: str, title: str, body: str
    ) -> tuple[str | None, str | None] | Response:
        """The words the incident's page shows now; 404 for no such incident, 200 ``unchanged``
        when it shows these words already (also when the store cannot be read: the command is
        queued unchecked, as if nothing were shown)."""
        try:
            incident = await self._store.get(incident_id)
        except SQLAlchemyError as exc:
            log.warning(
                "cannot check %s (%s): publish queued unchecked", incident_id, type(exc).__name__
            )
            return NOTHING_SHOWN
        if incident is None:
            return error_response(404, "not_found", f"no incident {incident_id}")
        shown = (incident.status_page_title, incident.status_page_body)
        if shown == (title, body):
            return JSONResponse(
                {
                    "status": "unchanged",
                    "incident_id": incident_id,
                    "message": f"{incident_id} is published with these words already",
                }
            )
        return shown

    async def _queue(self, command: Command) -> Response:
        """202 once Kafka has the command, else 503 + Retry-After."""
        try:
            await self._publisher.publish(command)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("api: publish not queued (%s); answering 503", type(exc).__name__)
            return error_response(
                503,
                "unavailable",
                "the command could not be queued; retry",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.info(
            "api: publish %s on the status page (command %s)", command.incident_id, command.command_id
        )
        return JSONResponse(
            {
                "status": "accepted",
                "command_id": command.command_id,
                "incident_id": command.incident_id,
                "action": "publish",
            },
            202,
        )


async def _read_words(request: Request) -> tuple[str, str, str | None] | Response:
    """The request's ``(title, body, by)``, or the refusal (413, 408, 400, 422)."""
    try:
        raw = await read_capped(request, _BODY_MAX, BODY_READ_SECONDS)
    except BodyTooLarge:
        return error_response(413, "too_large", f"body over {_BODY_MAX} bytes")
    except BodyTooSlow:
        return body_too_slow(BODY_READ_SECONDS)
    except ClientDisconnect:
        return error_response(400, "client_disconnected", "the body was not received in full")
    try:
        words = _words(read_json(raw))
    except NotJson as exc:
        return error_response(400, "invalid_json", f"the body is {exc}")
    if isinstance(words, str):
        return error_response(422, "invalid_body", words)
    return words
