"""What every callback shares: where commands go (:class:`CommandSink`), reading the body, publishing
the commands (503 when Kafka does not take them), stable command ids and the caller's name as one
clean line."""

import hashlib
import logging
import re
import uuid
from collections.abc import Collection
from datetime import timedelta
from typing import Protocol

from aiokafka.errors import KafkaError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from models.clock import Clock
from models.incident import Command
from models.notes import NOTE_MAX, clean_note
from models.wire import unknown_fields
from receiver.body import BodyTooLarge, BodyTooSlow, read_capped
from receiver.errors import body_too_slow, error_response

__all__ = [
    "INCIDENT_ID",
    "RETRY_AFTER_SECONDS",
    "CallbackContext",
    "CommandSink",
    "command_id",
    "episode_of",
    "keyed_command_id",
    "log",
    "name_of",
    "refused_fields",
    "unauthorized",
]

#: One logger for every callback (the API, Slack, PagerDuty): its name is what operators filter on.
log = logging.getLogger("receiver.callbacks")

RETRY_AFTER_SECONDS = 5
#: Incident ids are ``inc_`` + hex today; accept any short plain id, refuse anything else.
INCIDENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_NAME_MAX = NOTE_MAX


class CommandSink(Protocol):
    """Where commands go: :class:`receiver.commands.CommandPublisher` (Kafka), or a test recorder.

    ``publish`` returns once the command is durably accepted and raises on failure or timeout."""

    async def publish(self, command: Command) -> None: ...


def command_id(source: str, *parts: str) -> str:
    """A short stable id: the same request (a retry) gives the same id, so it applies once."""
    return f"{source}:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def keyed_command_id(incident_id: str, action: str, caller: str, key: str | None, body: bytes) -> str:
    """The id of an API command: with an ``Idempotency-Key``, the same for the same caller
    sending the same body under the same key (a retry: applied once); otherwise new. The key
    alone made it: a second note under a key already used, with other text or by another
    token, was answered 202 and dropped as the first one's repeat, so one caller could suppress
    another's command by reusing its key."""
    if key is None or not key.strip():
        return f"api:{uuid.uuid4().hex}"
    return command_id("api", incident_id, action, caller, key, hashlib.sha256(body).hexdigest())


def name_of(value: object) -> str | None:
    """Who acted, as the caller names them: one clean line (:func:`models.notes.clean_note`)."""
    return clean_note(value, _NAME_MAX)


def refused_fields(document: dict[str, object], takes: Collection[str]) -> Response | None:
    """422 naming the body's fields the command does not take (:func:`models.wire.unknown_fields`),
    else None: a misspelt ``episdoe`` was ignored and the command acted on the current episode,
    and a resolution's ``root_cause`` sent with a note was dropped without a word."""
    unknown = unknown_fields(document, sorted(takes))
    return None if unknown is None else error_response(422, "invalid_body", unknown)


def episode_of(document: dict[str, object], read: int | None) -> int | Response | None:
    """The episode a command from the API acts on: the body's ``episode``, else ``read``, the
    incident's ``flaps`` as the store showed it when the request was checked (None: not known).

    A body naming another episode than the store's is refused here, 409, in the words the
    worker would refuse it in after a 202 (models.incident.refusal): an earlier one (the incident
    reopened since), or one the incident has not reached (episodes only grow: a number read
    elsewhere, or made up). Not known, the worker decides."""
    given = document.get("episode")
    if given is None:
        return read
    if isinstance(given, bool) or not isinstance(given, int) or given < 0:
        return error_response(422, "invalid_body", "episode must be the incident's flaps (an int >= 0)")
    if read is not None and given < read:
        message = f"issued for episode {given}; the incident reopened since (episode {read})"
        return error_response(409, "incident_reopened", message)
    if read is not None and given > read:
        message = f"issued for episode {given}, which the incident has not reached (episode {read})"
        return error_response(409, "episode_not_reached", message)
    return given


def unauthorized(scheme: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": scheme} if scheme else None
    return error_response(401, "unauthorized", "missing or invalid credentials", headers=headers)


class CallbackContext:
    """The publisher, the clock and the body limits every callback uses."""

    def __init__(
        self,
        publisher: CommandSink,
        *,
        clock: Clock,
        max_body_bytes: int,
        body_read_seconds: float,
        slack_replay_window: timedelta = timedelta(minutes=5),
    ) -> None:
        self.clock = clock
        self.slack_replay_window = slack_replay_window
        self._publisher = publisher
        self._limit = max_body_bytes
        self._read_seconds = body_read_seconds

    async def body(self, request: Request) -> bytes | Response:
        """The body, or the refusal: 413 over the limit, 408 too slow, 400 cut short."""
        try:
            return await read_capped(request, self._limit, self._read_seconds)
        except BodyTooLarge:
            return error_response(413, "too_large", f"body over {self._limit} bytes")
        except BodyTooSlow:
            return body_too_slow(self._read_seconds)
        except ClientDisconnect:
            return error_response(400, "client_disconnected", "the body was not received in full")

    async def publish(self, commands: list[Command], where: str) -> Response | None:
        """Publish every command; a 503 response when Kafka did not take them, else None."""
        try:
            for command in commands:
                await self._publisher.publish(command)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("%s: command not published (%s); answering 503", where, type(exc).__name__)
            return error_response(
                503,
                "unavailable",
                "the command could not be queued; retry",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        for command in commands:
            log.info(
                "%s: %s %s by %s/%s (command %s)",
                where,
                command.action,
                command.incident_id,
                command.actor.via,
                command.actor.name or "-",
                command.command_id,
            )
        return None
