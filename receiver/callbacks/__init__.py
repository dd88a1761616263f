"""Acknowledge, resolve and escalate to the manager from outside: the HTTP API, Slack buttons and
PagerDuty webhooks.

=========================================  ==================================================
``POST /api/incidents/{id}/ack|resolve``   token with ``write`` scope; optional JSON
                                           ``{"by": "a note", "episode": 2}`` (the incident's
                                           ``flaps`` as read), for resolve also ``root_cause``,
                                           ``fix``, ``follow_up``; optional ``Idempotency-Key``
``POST /api/incidents/{id}/escalate``      the same, with ``{"to": "manager"}`` required
``POST /callbacks/slack/interactivity``    ``block_actions`` with ``action_id`` ack / resolve /
                                           escalate_manager and ``value`` = incident id;
                                           ``X-Slack-Signature`` v0
``POST /callbacks/pagerduty``              webhooks v3 ``incident.acknowledged`` / ``.resolved``;
                                           ``data.incident_key`` (our dedup_key) = incident id,
                                           or ``<id>/escalation/<level>`` for a level's own page
                                           (acknowledges); ``X-PagerDuty-Signature`` v1
=========================================  ==================================================

Who may act, beyond a valid signature: a Slack button only for members of the configured
workspace and, optionally, user group (:mod:`receiver.slack_callers`; anyone else gets an ephemeral
refusal); a PagerDuty webhook only for the configured account, read from the incident's
``data.html_url`` (``https://<subdomain>.pagerduty.com/incidents/…``): another account's event is
answered ``202`` ``"ignored"`` (so PagerDuty does not retry it) and logged, never applied.

Each request becomes a :class:`models.incident.Command` (``actor`` says who and through what) that
is published to the commands topic; the stream worker applies it idempotently by ``command_id``
and emits ``acknowledged`` / ``resolved`` on ``incident-events``. Applying it takes the incident's
lock, the same one the escalation loop takes, so once the acknowledgement is applied no further
level fires.

Status codes: a missing or wrong credential or signature, or a Slack timestamp outside the replay
window, is ``401`` and publishes nothing. ``503`` + ``Retry-After`` when Kafka did not take the
command (Slack shows an error, PagerDuty retries). Anything else that can never succeed is a 4xx
naming the problem, except for PagerDuty, which disables a subscription after repeated 4xx: an
event sevflow does not act on is answered ``202`` with ``"ignored"`` and the reason.

Signatures are compared in constant time; secrets never appear in a response or a log line.
"""

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from aiokafka.errors import KafkaError
from pydantic import SecretStr
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.clock import Clock, utc_now
from models.events import Actor
from models.incident import RESOLUTION_DETAIL_MAX, RESOLUTION_DETAILS, Command
from models.notes import NOTE_MAX, clean_note
from models.pagerduty_keys import DEDUP_KEY_MAX, parse_key
from models.settings import Settings
from receiver.access import principal_of
from receiver.body import BODY_READ_SECONDS, BodyTooLarge, BodyTooSlow, read_capped
from receiver.commands import Action
from receiver.errors import body_too_slow, error_response
from receiver.slack_callers import SlackCallers

__all__ = [
    "API_ACK_PATH",
    "API_RESOLVE_PATH",
    "PAGERDUTY_PATH",
    "SLACK_PATH",
    "CommandSink",
    "callback_routes",
    "pagerduty_account",
    "pagerduty_signature",
    "routes_from_settings",
    "slack_callers_from_settings",
    "slack_signature",
    "verify_pagerduty",
    "verify_slack",
]

log = logging.getLogger(__name__)

API_ACK_PATH = "/api/incidents/{incident_id}/ack"
API_RESOLVE_PATH = "/api/incidents/{incident_id}/resolve"
API_ESCALATE_PATH = "/api/incidents/{incident_id}/escalate"
SLACK_PATH = "/callbacks/slack/interactivity"
PAGERDUTY_PATH = "/callbacks/pagerduty"

RETRY_AFTER_SECONDS = 5
#: Incident ids are ``inc_`` + hex today; accept any short plain id, refuse anything else.
_INCIDENT_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_NAME_MAX = NOTE_MAX
_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
#: The episode a Slack button names (an incident's flaps): ASCII digits.
_EPISODE = re.compile(r"[0-9]{1,9}")
_SLACK_ACTIONS: dict[str, Action] = {
    "ack": "acknowledge",
    "resolve": "resolve",
    "escalate_manager": "escalate",  # the SEV1 announcement's "Escalate to manager"
}
_PAGERDUTY_EVENTS: dict[str, Literal["acknowledge", "resolve"]] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
}
#: The agent type of a PagerDuty user (webhooks v3 ``event.agent``); an Events API integration is
#: not one.
_PAGERDUTY_USER = "user_reference"
#: ``https://<subdomain>.pagerduty.com/…`` or, in the EU service region, ``<subdomain>.eu.…``.
_PAGERDUTY_HOST = re.compile(r"([a-z0-9][a-z0-9-]{0,62})(?:\.eu)?\.pagerduty\.com")


class CommandSink(Protocol):
    """Where commands go: :class:`receiver.commands.CommandPublisher` (Kafka), or a test recorder.

    ``publish`` returns once the command is durably accepted and raises on failure or timeout."""

    async def publish(self, command: Command) -> None: ...


# --- signatures (pure) ------------------------------------------------------------------------


def slack_signature(secret: SecretStr, timestamp: str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` (Slack, "Verifying requests")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.get_secret_value().encode(), base, hashlib.sha256).hexdigest()
    return "v0=" + digest


def verify_slack(
    secret: SecretStr,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window: timedelta = timedelta(minutes=5),
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` and the timestamp is within
    ``window`` of ``now`` (Slack's replay protection: 5 minutes either way)."""
    # ASCII digits, at most 12 (Unix seconds until the year 33658): str.isdigit() also takes "²",
    # and int() of thousands of digits raises instead of answering.
    if not timestamp or not signature or not _SLACK_TIMESTAMP.fullmatch(timestamp.strip()):
        return False
    if not secret.get_secret_value().strip():  # anyone can sign with an empty key
        return False
    if abs(now.timestamp() - int(timestamp)) > window.total_seconds():
        return False
    expected = slack_signature(secret, timestamp.strip(), body)
    return hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace"))


def pagerduty_signature(secret: SecretStr, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of the raw body (PagerDuty webhooks v3, "Verifying Signatures")."""
    return "v1=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()


def verify_pagerduty(secrets: Sequence[SecretStr], header: str | None, body: bytes) -> bool:
    """True when any ``v1=`` entry of ``X-PagerDuty-Signature`` (comma separated, several during
    rotation) matches the body under any configured secret; other versions are ignored."""
    secrets = [s for s in secrets if s.get_secret_value().strip()]  # an empty key signs for anyone
    if not header or not secrets:
        return False
    given = [s.strip().encode("utf-8", "replace") for s in header.split(",")]
    given = [g for g in given if g.startswith(b"v1=")]
    matched = False
    for secret in secrets:
        expected = pagerduty_signature(secret, body).encode()
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def pagerduty_account(html_url: object) -> str | None:
    """The account (subdomain) of a webhook's ``data.html_url``, or None when it names none."""
    if not isinstance(html_url, str) or len(html_url) > 2048:
        return None
    scheme, _, rest = html_url.partition("://")
    host = rest.split("/", 1)[0].lower()
    matched = _PAGERDUTY_HOST.fullmatch(host)
    return matched.group(1) if scheme.lower() == "https" and matched else None


# --- plumbing ---------------------------------------------------------------------------------


def _command_id(source: str, *parts: str) -> str:
    """A short stable id: the same request (a retry) gives the same id, so it applies once."""
    return f"{source}:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _name(value: object) -> str | None:
    """Who acted, as the caller names them: one clean line (:func:`models.notes.clean_note`)."""
    return clean_note(value, _NAME_MAX)


def _unauthorized(scheme: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": scheme} if scheme else None
    return error_response(401, "unauthorized", "missing or invalid credentials", headers=headers)


class _Callbacks:
    def __init__(
        self,
        publisher: CommandSink,
        *,
        slack_signing_secret: SecretStr | None,
        slack_callers: SlackCallers | None,
        pagerduty_secrets: Sequence[SecretStr],
        pagerduty_account: str | None,
        clock: Clock,
        slack_replay_window: timedelta,
        max_body_bytes: int,
        body_read_seconds: float,
    ) -> None:
        self._publisher = publisher
        self._slack_secret = slack_signing_secret
        self._slack_callers = slack_callers
        self._pd_secrets = list(pagerduty_secrets)
        self._pd_account = pagerduty_account
        self._clock = clock
        self._window = slack_replay_window
        self._limit = max_body_bytes
        self._read_seconds = body_read_seconds

    async def _publish(self, commands: list[Command], where: str) -> Response | None:
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

    async def _body(self, request: Request) -> bytes | Response:
        try:
            return await read_capped(request, self._limit, self._read_seconds)
        except BodyTooLarge:
            return error_response(413, "too_large", f"body over {self._limit} bytes")
        except BodyTooSlow:
            return body_too_slow(self._read_seconds)
        except ClientDisconnect:
            return error_response(400, "client_disconnected", "the body was not received in full")

    # --- HTTP API -----------------------------------------------------------------------------

    def api(self, action: Action) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            principal = principal_of(request)
            if principal is None:  # served without receiver.access.protect: nobody is known
                return _unauthorized("Bearer")
            incident_id = request.path_params["incident_id"]
            if not _INCIDENT_ID.fullmatch(incident_id):
                return error_response(422, "invalid_incident_id", "not an incident id")
            body = await self._body(request)
            if isinstance(body, Response):
                return body
            note: str | None = None
            details: dict[str, str] = {}
            # The episode the caller acts on: given in the body, else the one the store showed
            # when the request was checked (receiver/incident_api.py), else not known.
            episode: int | None = getattr(request.state, "episode", None)
            if body.strip():
                try:
                    document = json.loads(body)
                except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the stack
                    return error_response(400, "invalid_json", "the body is not JSON")
                if not isinstance(document, dict) or not (
                    document.get("by") is None or isinstance(document.get("by"), str)
                ):
                    return error_response(422, "invalid_body", 'expected {"by": "<a note>"} (optional)')
                note = _name(document.get("by"))
                problem = _resolution_details(document, action, details) or _escalation_to(
                    document, action
                )
                if problem is not None:
                    return error_response(422, "invalid_body", problem)
                given = document.get("episode")
                if given is not None:
                    if isinstance(given, bool) or not isinstance(given, int) or given < 0:
                        return error_response(
                            422, "invalid_body", "episode must be the incident's flaps (an int >= 0)"
                        )
                    episode = given
            elif action == "escalate":
                return error_response(422, "invalid_body", 'expected {"to": "manager"}')
            key = request.headers.get("idempotency-key")
            command_id = (
                _command_id("api", incident_id, action, key)
                if key and key.strip()
                else f"api:{uuid.uuid4().hex}"
            )
            command = Command(
                command_id=command_id,
                action=action,
                incident_id=incident_id,
                # The token's name acts; the body's "by" is only a note shown beside it.
                actor=Actor(via="api", name=principal.name, note=note),
                requested_at=self._clock(),
                episode=episode,
                to="manager" if action == "escalate" else None,
                **details,
            )
            refused = await self._publish([command], "api")
            if refused is not None:
                return refused
            return JSONResponse(
                {
                    "status": "accepted",
                    "command_id": command_id,
                    "incident_id": incident_id,
                    "action": action,
                },
                202,
            )

        return endpoint

    # --- Slack --------------------------------------------------------------------------------

    async def slack(self, request: Request) -> Response:
        assert self._slack_secret is not None
        assert self._slack_callers is not None
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not verify_slack(
            self._slack_secret,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            body,
            self._clock(),
            self._window,
        ):
            log.warning("slack: refused a request with a bad or stale signature")
            return _unauthorized()
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            payload = json.loads(form["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError, RecursionError):
            return error_response(400, "invalid_payload", "expected a form field payload=<JSON>")
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return Response(status_code=200)  # other interactions are not ours to handle
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        assert isinstance(user, dict)
        refusal = await self._slack_callers.refusal(payload)
        if refusal is not None:
            log.warning(
                "slack: refused a button press by %s: %s", _name(user.get("id")) or "-", refusal.reason
            )
            await self._slack_callers.tell(payload.get("response_url"), refusal.text)
            return Response(status_code=200)  # Slack shows an error for anything else
        who = _name(user.get("username")) or _name(user.get("name")) or _name(user.get("id"))
        commands: list[Command] = []
        actions = payload.get("actions")
        for item in actions if isinstance(actions, list) else []:
            if not isinstance(item, dict):
                continue
            action = _SLACK_ACTIONS.get(str(item.get("action_id")))
            value = item.get("value")
            if action is None or not isinstance(value, str):
                continue
            # ``<id>@<episode>`` (sinks/slack_format.py); a bare id from older messages.
            incident_id, at, episode_text = value.partition("@")
            if not _INCIDENT_ID.fullmatch(incident_id):
                continue
            if at and not _EPISODE.fullmatch(episode_text):
                continue
            commands.append(
                Command(
                    command_id=_command_id(
                        "slack",
                        str(user.get("id")),
                        str(item.get("action_ts")),
                        str(item.get("action_id")),
                        incident_id,
                    ),
                    action=action,
                    incident_id=incident_id,
                    actor=Actor(via="slack", name=who),
                    requested_at=self._clock(),
                    episode=int(episode_text) if at else None,
                    to="manager" if action == "escalate" else None,
                )
            )
        refused = await self._publish(commands, "slack")
        return refused or Response(status_code=200)

    # --- PagerDuty ----------------------------------------------------------------------------

    async def pagerduty(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not verify_pagerduty(self._pd_secrets, request.headers.get("x-pagerduty-signature"), body):
            log.warning("pagerduty: refused a webhook with a bad or missing signature")
            return _unauthorized()
        try:
            document = json.loads(body)
            event: dict[str, Any] = document["event"]
            event_type = str(event["event_type"])
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, RecursionError):
            return error_response(400, "invalid_payload", "expected a webhooks v3 {event: {...}}")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        assert isinstance(data, dict)
        account = pagerduty_account(data.get("html_url"))
        if account != self._pd_account:
            log.warning(
                "pagerduty: ignored %s of another account (%s)",
                _name(event_type),
                account or "no https://<subdomain>.pagerduty.com data.html_url",
            )
            return _ignored("not an event of the configured PagerDuty account")
        action = _PAGERDUTY_EVENTS.get(event_type)
        if action is None:
            return _ignored(f"event type {event_type} is not acted on")
        incident_key = data.get("incident_key")
        if not isinstance(incident_key, str):
            return _ignored("no sevflow incident key (data.incident_key) on the incident")
        key = parse_key(incident_key)
        if key.kind == "storm":
            return _ignored("a storm digest: its incidents are acknowledged one by one")
        pagerduty_alert = incident_key[:DEDUP_KEY_MAX]
        if key.kind == "escalation":
            # The page of an escalation level (the secondary, the manager): whoever answers it has
            # responded, which stops the escalation; resolving their page is not resolving the
            # incident, so either counts as an acknowledgement.
            action = "acknowledge"
        incident_id = key.incident_id
        if incident_id is None or not _INCIDENT_ID.fullmatch(incident_id):
            return _ignored("no sevflow incident key (data.incident_key) on the incident")
        agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
        assert isinstance(agent, dict)
        if event_type == "incident.resolved" and agent.get("type") != _PAGERDUTY_USER:
            # Resolved by no user: through the Events API, which is how sevflow resolves its own
            # incidents there. Taken as an operator's resolve it would come back late, after the
            # incident reopened, and close the new episode.
            return _ignored("resolved in PagerDuty by no user (sevflow's own resolve, echoed)")
        delivery = str(event.get("id") or request.headers.get("x-webhook-id") or "")
        command = Command(
            command_id=_command_id(
                "pagerduty", delivery or hashlib.sha256(body).hexdigest(), event_type
            ),
            action=action,
            incident_id=incident_id,
            actor=Actor(via="pagerduty", name=_name(agent.get("summary")) or _name(agent.get("id"))),
            # When it happened in PagerDuty (repeated on every retry of the webhook), not when a
            # retry reached us: a resolve retried after the incident reopened stays before it.
            requested_at=_occurred_at(event.get("occurred_at")) or self._clock(),
            pagerduty_alert=pagerduty_alert if action == "acknowledge" else None,
        )
        refused = await self._publish([command], "pagerduty")
        if refused is not None:
            return refused
        return JSONResponse(
            {"status": "accepted", "command_id": command.command_id, "incident_id": incident_id},
            202,
        )


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


def _occurred_at(value: object) -> datetime | None:
    """A webhook's ``occurred_at`` (ISO 8601 with a zone), or None when absent or not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.astimezone(UTC) if at.tzinfo is not None else None


def _ignored(reason: str) -> JSONResponse:
    return JSONResponse({"status": "ignored", "reason": reason}, 202)


def callback_routes(
    publisher: CommandSink,
    *,
    slack_signing_secret: SecretStr | None = None,
    slack_callers: SlackCallers | None = None,
    pagerduty_secrets: Sequence[SecretStr] = (),
    pagerduty_account: str | None = None,
    clock: Clock = utc_now,
    slack_replay_window: timedelta = timedelta(minutes=5),
    max_body_bytes: int = 256 * 1024,
    body_read_seconds: float = BODY_READ_SECONDS,
) -> list[Route]:
    """The acknowledgement routes, to mount into the receiver's Starlette app.

    The API routes are always served, behind the ``write`` scope the receiver checks
    (receiver/access.py: the token's name is the command's actor); the
    Slack and PagerDuty routes only when their secret is configured. An empty (or blank) secret or
    token is not configured: an HMAC under an empty key is one anyone can compute.

    The Slack route needs ``slack_callers`` (who may press), the PagerDuty route
    ``pagerduty_account`` (whose events count): without them a :class:`ValueError`."""
    if slack_signing_secret is not None and not slack_signing_secret.get_secret_value().strip():
        slack_signing_secret = None
    pagerduty_secrets = [s for s in pagerduty_secrets if s.get_secret_value().strip()]
    if slack_signing_secret is not None and slack_callers is None:
        raise ValueError("the Slack callback needs slack_callers: who may press the buttons")
    if pagerduty_secrets and not pagerduty_account:
        raise ValueError("the PagerDuty callback needs pagerduty_account: whose events count")
    callbacks = _Callbacks(
        publisher,
        slack_signing_secret=slack_signing_secret,
        slack_callers=slack_callers,
        pagerduty_secrets=pagerduty_secrets,
        pagerduty_account=pagerduty_account,
        clock=clock,
        slack_replay_window=slack_replay_window,
        max_body_bytes=max_body_bytes,
        body_read_seconds=body_read_seconds,
    )
    routes = [
        Route(API_ACK_PATH, callbacks.api("acknowledge"), methods=["POST"], name="api_ack"),
        Route(API_RESOLVE_PATH, callbacks.api("resolve"), methods=["POST"], name="api_resolve"),
        Route(API_ESCALATE_PATH, callbacks.api("escalate"), methods=["POST"], name="api_escalate"),
    ]
    if slack_signing_secret is not None:
        routes.append(Route(SLACK_PATH, callbacks.slack, methods=["POST"], name="slack_callback"))
    if pagerduty_secrets:
        routes.append(
            Route(PAGERDUTY_PATH, callbacks.pagerduty, methods=["POST"], name="pagerduty_callback")
        )
    return routes


def slack_callers_from_settings(settings: Settings) -> SlackCallers | None:
    """Who may press the Slack buttons, as configured; None when the buttons are not served."""
    if settings.slack_signing_secret is None:
        return None
    # Settings refuse a signing secret without a team id and a token.
    assert settings.slack_team_id is not None
    assert settings.slack_token is not None
    return SlackCallers(
        settings.slack_token,
        settings.slack_base_url,
        settings.slack_team_id,
        allowed_usergroup=settings.slack_allowed_usergroup,
        cache_seconds=settings.slack_caller_cache_seconds,
        allow_insecure=settings.allow_insecure_vendor_urls,
    )


def routes_from_settings(
    settings: Settings,
    publisher: CommandSink,
    *,
    clock: Clock = utc_now,
    slack_callers: SlackCallers | None = None,
) -> list[Route]:
    """:func:`callback_routes` configured from settings; ``slack_callers`` from
    :func:`slack_callers_from_settings` (the caller closes it)."""
    return callback_routes(
        publisher,
        slack_signing_secret=settings.slack_signing_secret,
        slack_callers=slack_callers,
        pagerduty_secrets=settings.pagerduty_webhook_secrets,
        pagerduty_account=settings.pagerduty_account_subdomain,
        clock=clock,
        slack_replay_window=timedelta(seconds=settings.slack_replay_window_seconds),
        max_body_bytes=settings.callback_max_body_bytes,
    )
