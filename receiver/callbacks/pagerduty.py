"""``POST /callbacks/pagerduty``: webhooks v3 ``incident.acknowledged`` / ``.resolved``.

``data.incident_key`` (our dedup_key) is the incident id, or ``<id>/escalation/<level>`` for a
level's own page (acknowledges); signed with ``X-PagerDuty-Signature`` v1 (else 401). Only events
of the configured account count, read from ``data.html_url``
(``https://<subdomain>.pagerduty.com/incidents/…``). PagerDuty disables a subscription after
repeated 4xx, so an event sevflow does not act on (another account's too) is answered ``202``
``"ignored"`` with the reason, and logged, never applied.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.alert import in_time_range
from models.events import Actor
from models.incident import Command
from models.pagerduty_keys import DEDUP_KEY_MAX, parse_key
from models.wire import NotJson, read_json
from receiver.callbacks.common import (
    INCIDENT_ID,
    CallbackContext,
    command_id,
    log,
    name_of,
    unauthorized,
)
from receiver.callbacks.signatures import pagerduty_account, verify_pagerduty
from receiver.errors import error_response

__all__ = ["PAGERDUTY_PATH", "PagerDutyCallback"]

PAGERDUTY_PATH = "/callbacks/pagerduty"

_PAGERDUTY_EVENTS: dict[str, Literal["acknowledge", "resolve"]] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
}
#: The agent type of a PagerDuty user (webhooks v3 ``event.agent``); an Events API integration is
#: not one.
_PAGERDUTY_USER = "user_reference"


class PagerDutyCallback:
    """The PagerDuty webhook endpoint (:meth:`endpoint`)."""

    def __init__(self, context: CallbackContext, secrets: Sequence[SecretStr], account: str) -> None:
        self._context = context
        self._secrets = list(secrets)
        self._account = account

    async def endpoint(self, request: Request) -> Response:
        body = await self._context.body(request)
        if isinstance(body, Response):
            return body
        if not verify_pagerduty(self._secrets, request.headers.get("x-pagerduty-signature"), body):
            log.warning("pagerduty: refused a webhook with a bad or missing signature")
            return unauthorized()
        try:
            document = read_json(body)
            event: dict[str, Any] = document["event"]
            event_type = str(event["event_type"])
        except NotJson as exc:
            return error_response(400, "invalid_payload", f"the body is {exc}")
        except (KeyError, TypeError):
            return error_response(400, "invalid_payload", "expected a webhooks v3 {event: {...}}")
        command = self._command(event, event_type, request, body)
        if isinstance(command, Response):
            return command
        refused = await self._context.publish([command], "pagerduty")
        if refused is not None:
            return refused
        return JSONResponse(
            {
                "status": "accepted",
                "command_id": command.command_id,
                "incident_id": command.incident_id,
            },
            202,
        )

    def _command(
        self, event: dict[str, Any], event_type: str, request: Request, body: bytes
    ) -> Command | Response:
        """The command ``event`` asks for, or the 202 ``"ignored"`` naming why there is none."""
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        assert isinstance(data, dict)
        account = pagerduty_account(data.get("html_url"))
        if account != self._account:
            log.warning(
                "pagerduty: ignored %s of another account (%s)",
                name_of(event_type),
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
        if key.kind == "escalation":
            # The page of an escalation level (the secondary, the manager): whoever answers it has
            # responded, which stops the escalation; resolving their page is not resolving the
            # incident, so either counts as an acknowledgement.
            action = "acknowledge"
        incident_id = key.incident_id
        if incident_id is None or not INCIDENT_ID.fullmatch(incident_id):
            return _ignored("no sevflow incident key (data.incident_key) on the incident")
        agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
        assert isinstance(agent, dict)
        if event_type == "incident.resolved" and agent.get("type") != _PAGERDUTY_USER:
            # Resolved by no user: through the Events API, which is how sevflow resolves its own
            # incidents there. Taken as an operator's resolve it would come back late, after the
            # incident reopened, and close the new episode.
            return _ignored("resolved in PagerDuty by no user (sevflow's own resolve, echoed)")
        delivery = str(event.get("id") or request.headers.get("x-webhook-id") or "")
        return Command(
            command_id=command_id("pagerduty", delivery or hashlib.sha256(body).hexdigest(), event_type),
            action=action,
            incident_id=incident_id,
            actor=Actor(via="pagerduty", name=name_of(agent.get("summary")) or name_of(agent.get("id"))),
            # When it happened in PagerDuty (repeated on every retry of the webhook), not when a
            # retry reached us: a resolve retried after the incident reopened stays before it.
            requested_at=_occurred_at(event.get("occurred_at")) or self._context.clock(),
            pagerduty_alert=incident_key[:DEDUP_KEY_MAX] if action == "acknowledge" else None,
        )


def _occurred_at(value: object) -> datetime | None:
    """A webhook's ``occurred_at`` (ISO 8601 with a zone), or None when absent or not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return in_time_range(at.astimezone(UTC)) if at.tzinfo is not None else None
    except (ValueError, OverflowError):  # (year 1 at +14:00 is before year 1 in UTC)
        return None


def _ignored(reason: str) -> JSONResponse:
    return JSONResponse({"status": "ignored", "reason": reason}, 202)
