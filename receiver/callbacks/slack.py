"""``POST /callbacks/slack/interactivity``: the incident messages' buttons.

``block_actions`` with ``action_id`` ack / resolve / escalate_manager and ``value`` = incident id
(``<id>@<episode>``), signed with ``X-Slack-Signature`` v0 within the replay window (else 401,
nothing published). Only members of the configured workspace (and user group, if set) may press:
anyone else gets an ephemeral refusal (:mod:`receiver.slack_callers`). Slack shows an error for any
answer but 200, so refusals it should not show are 200 too.
"""

import re
from typing import Any
from urllib.parse import parse_qs

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from models.events import Actor
from models.incident import Command
from models.wire import NotJson, read_json
from receiver.callbacks.common import (
    INCIDENT_ID,
    CallbackContext,
    command_id,
    log,
    name_of,
    unauthorized,
)
from receiver.callbacks.signatures import verify_slack
from receiver.commands import Action
from receiver.errors import error_response
from receiver.slack_callers import SlackCallers

__all__ = ["SLACK_PATH", "SlackCallback"]

SLACK_PATH = "/callbacks/slack/interactivity"

_SLACK_ACTIONS: dict[str, Action] = {
    "ack": "acknowledge",
    "resolve": "resolve",
    "escalate_manager": "escalate",  # the SEV1 announcement's "Escalate to manager"
}
#: The episode a Slack button names (an incident's flaps): ASCII digits.
_EPISODE = re.compile(r"[0-9]{1,9}")


class SlackCallback:
    """The Slack interactivity endpoint (:meth:`endpoint`)."""

    def __init__(self, context: CallbackContext, secret: SecretStr, callers: SlackCallers) -> None:
        self._context = context
        self._secret = secret
        self._callers = callers

    async def endpoint(self, request: Request) -> Response:
        body = await self._context.body(request)
        if isinstance(body, Response):
            return body
        if not verify_slack(
            self._secret,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            body,
            self._context.clock(),
            self._context.slack_replay_window,
        ):
            log.warning("slack: refused a request with a bad or stale signature")
            return unauthorized()
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            payload = read_json(form["payload"][0])
        except NotJson as exc:
            return error_response(400, "invalid_payload", f"the form field payload is {exc}")
        except (KeyError, IndexError, ValueError):  # (UnicodeDecodeError is one)
            return error_response(400, "invalid_payload", "expected a form field payload=<JSON>")
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return Response(status_code=200)  # other interactions are not ours to handle
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        assert isinstance(user, dict)
        refusal = await self._callers.refusal(payload)
        if refusal is not None:
            log.warning(
                "slack: refused a button press by %s: %s", name_of(user.get("id")) or "-", refusal.reason
            )
            await self._callers.tell(payload.get("response_url"), refusal.text)
            return Response(status_code=200)  # Slack shows an error for anything else
        refused = await self._context.publish(self._commands(payload, user), "slack")
        return refused or Response(status_code=200)

    def _commands(self, payload: dict[str, Any], user: dict[str, Any]) -> list[Command]:
        """A command per button of ours in ``payload["actions"]``; others are skipped."""
        who = name_of(user.get("username")) or name_of(user.get("name")) or name_of(user.get("id"))
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
            if not INCIDENT_ID.fullmatch(incident_id):
                continue
            if at and not _EPISODE.fullmatch(episode_text):
                continue
            commands.append(
                Command(
                    command_id=command_id(
                        "slack",
                        str(user.get("id")),
                        str(item.get("action_ts")),
                        str(item.get("action_id")),
                        incident_id,
                    ),
                    action=action,
                    incident_id=incident_id,
                    actor=Actor(via="slack", name=who),
                    requested_at=self._context.clock(),
                    episode=int(episode_text) if at else None,
                    to="manager" if action == "escalate" else None,
                )
            )
        return commands
