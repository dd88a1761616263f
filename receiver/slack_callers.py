"""Who may press sevflow's Slack buttons: members of the configured workspace, optionally of one
user group; never an external (Slack Connect) user or a guest.

A valid signature proves that Slack sent the request, not that the person pressing the button
belongs to the team: a channel shared through Slack Connect shows the announcement, and its
buttons, to another organisation's users, and guests see the channels they are invited to. So:

1. from the signed payload (:func:`payload_refusal`): the workspace the action happened in
   (``team.id``) and the user's own workspace (``user.team_id``) are the configured one
   (``SEVFLOW_SLACK_TEAM_ID``), and the app is not an organisation-wide install
   (``is_enterprise_install``), whose payloads may come from any of the organisation's workspaces;
2. from Slack itself (``users.info``, :func:`user_refusal`): the user's home team is the
   configured one, the account is not deleted, and it is no guest (``is_restricted`` /
   ``is_ultra_restricted``);
3. with ``SEVFLOW_SLACK_ALLOWED_USERGROUP``, the user is a member of that group
   (``usergroups.users.list``).

Lookups go through slack-sdk's ``AsyncWebClient`` (as the Slack sink does) and are cached for
``SEVFLOW_SLACK_CALLER_CACHE_SECONDS`` on an injected monotonic clock: Slack wants the button
answered within 3 seconds, and membership changes rarely. A lookup that fails refuses the press
(fail closed) without caching the failure.

A refused user is told so with an ephemeral message (only they see it) posted to the payload's
``response_url`` (docs.slack.dev, "Handling user interaction": the answer to a ``block_actions``
request carries no message; ``response_url`` takes one, ``response_type: ephemeral``). That URL
comes from the signed payload; it is used only when it is https on hooks.slack.com (or the
configured Slack API's host, a proxy or a test fake).
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

__all__ = [
    "Refusal",
    "SlackCallers",
    "SlackLookupError",
    "payload_refusal",
    "user_refusal",
]

log = logging.getLogger(__name__)

#: The host of Slack's response URLs (``https://hooks.slack.com/actions/…``).
RESPONSE_HOST = "hooks.slack.com"

EXTERNAL = "Only members of this Slack workspace can acknowledge or resolve incidents; nothing was done."
GUEST = "Guests cannot acknowledge or resolve incidents; nothing was done."
NOT_IN_GROUP = (
    "Only the incident responders' user group can acknowledge or resolve incidents; nothing was done."
)
UNVERIFIED = "Slack could not confirm who you are, so nothing was done; try again in a moment."


@dataclass(frozen=True)
class Refusal:
    """Why a press is refused: ``reason`` for the log, ``text`` for the person."""

    reason: str
    text: str


class SlackLookupError(Exception):
    """``users.info`` or ``usergroups.users.list`` did not answer (an error code, HTTP, transport)."""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def payload_refusal(payload: dict[str, Any], team_id: str) -> Refusal | None:
    """Why the signed ``block_actions`` payload alone shows the user may not act, or None."""
    team = _dict(payload.get("team"))
    user = _dict(payload.get("user"))
    if payload.get("is_enterprise_install") is True:
        return Refusal("an organisation-wide install's action", EXTERNAL)
    if team.get("id") != team_id:
        return Refusal("an action in another workspace", EXTERNAL)
    if user.get("team_id") != team_id:
        return Refusal("an external user (Slack Connect)", EXTERNAL)
    return None


def user_refusal(user: dict[str, Any], team_id: str) -> Refusal | None:
    """Why the user ``users.info`` describes may not act, or None."""
    if user.get("team_id") != team_id or user.get("is_stranger") is True:
        return Refusal("an external user (users.info)", EXTERNAL)
    if user.get("deleted") is True:
        return Refusal("a deactivated user", EXTERNAL)
    if user.get("is_restricted") is True or user.get("is_ultra_restricted") is True:
        return Refusal("a guest", GUEST)
    return None


class SlackCallers:
    """Decides who may act on a Slack button, and tells those refused."""

    def __init__(
        self,
        token: SecretStr,
        base_url: str,
        team_id: str,
        *,
        allowed_usergroup: str | None = None,
        cache_seconds: float = 60.0,
        timeout: float = 2.0,
        allow_insecure: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.team_id = team_id
        self._token = token
        self._base_url = base_url
        self._usergroup = allowed_usergroup
        self._ttl = cache_seconds
        self._timeout = timeout
        self._allow_insecure = allow_insecure
        self._monotonic = monotonic
        self._response_hosts = {RESPONSE_HOST, urlsplit(base_url).netloc}
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._members: tuple[float, frozenset[str]] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    def _web(self) -> AsyncWebClient:
        if self._client is None:
            self._client = AsyncWebClient(
                token=self._token.get_secret_value(),
                base_url=self._base_url,
                timeout=math.ceil(self._timeout),
                session=self._http(),
                retry_handlers=[],
            )
        return self._client

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None

    async def _call(self, method: str, **args: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._web(), method.replace(".", "_"))(**args)
        except SlackApiError as exc:
            body = getattr(exc.response, "data", None)
            code = _dict(body).get("error") or f"HTTP {getattr(exc.response, 'status_code', '?')}"
            raise SlackLookupError(f"Slack {method}: {code}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SlackLookupError(f"Slack {method}: transport error ({type(exc).__name__})") from None
        return _dict(response.data)

    async def _user(self, user_id: str) -> dict[str, Any]:
        now = self._monotonic()
        cached = self._users.get(user_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        user = _dict((await self._call("users.info", user=user_id)).get("user"))
        self._users[user_id] = (now, user)
        return user

    async def _group_members(self, usergroup: str) -> frozenset[str]:
        now = self._monotonic()
        if self._members is not None and now - self._members[0] < self._ttl:
            return self._members[1]
        users = (await self._call("usergroups.users.list", usergroup=usergroup)).get("users")
        members = (
            frozenset(u for u in users if isinstance(u, str)) if isinstance(users, list) else frozenset()
        )
        self._members = (now, members)
        return members

    async def refusal(self, payload: dict[str, Any]) -> Refusal | None:
        """Why the user who pressed the button may not act, or None when they may."""
        refused = payload_refusal(payload, self.team_id)
        if refused is not None:
            return refused
        user_id = _dict(payload.get("user")).get("id")
        if not isinstance(user_id, str) or not user_id:
            return Refusal("no user id", UNVERIFIED)
        try:
            refused = user_refusal(await self._user(user_id), self.team_id)
            if (
                refused is None
                and self._usergroup is not None
                and user_id not in await self._group_members(self._usergroup)
            ):
                refused = Refusal("not in the allowed user group", NOT_IN_GROUP)
        except SlackLookupError as exc:
            log.warning("slack: could not verify user %s (%s); refusing", user_id, exc)
            return Refusal("the user could not be verified", UNVERIFIED)
        return refused

    async def tell(self, response_url: object, text: str) -> bool:
        """Post ``text`` as an ephemeral message to ``response_url``; True once Slack took it."""
        if not isinstance(response_url, str) or not self._response_url_allowed(response_url):
            log.warning("slack: no usable response_url to explain a refusal")
            return False
        webhook = AsyncWebhookClient(
            response_url, timeout=math.ceil(self._timeout), session=self._http(), retry_handlers=[]
        )
        try:
            answer = await webhook.send_dict(
                {"response_type": "ephemeral", "replace_original": False, "text": text}
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("slack: refusal not delivered (%s)", type(exc).__name__)
            return False
        if answer.status_code != 200:
            log.warning("slack: refusal not delivered (HTTP %d)", answer.status_code)
            return False
        return True

    def _response_url_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        secure = parts.scheme == "https" or (self._allow_insecure and parts.scheme == "http")
        return secure and parts.netloc in self._response_hosts
