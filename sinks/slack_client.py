"""The Slack Web API subset sevflow uses, through slack-sdk's ``AsyncWebClient``.

Errors become :class:`SlackError` (a :class:`DeliveryError` carrying Slack's error code): HTTP 429
(``ratelimited`` + ``Retry-After``), 5xx, transport errors and Slack's own transient codes are
retryable; every other ``ok: false`` is permanent. slack-sdk's retry handlers are left out so that
sevflow's one retry policy decides. Every request has ``timeout`` seconds.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sinks.errors import DeliveryError, parse_retry_after
from sinks.slack_format import SlackMessage

__all__ = ["SlackError", "SlackSender", "is_channel_id"]

#: ``ok: false`` codes that mean "try again later" (docs.slack.dev, "Web API" common errors).
TRANSIENT = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
METADATA_EVENT = "sevflow_delivery"
#: How far before its event an interrupted post is looked for (Slack's clock against ours), and
#: how many pages of 200 messages at most.
HISTORY_SKEW = timedelta(minutes=10)
HISTORY_PAGES = 50
#: Users per conversations.invite: docs.slack.dev says 1000, the method's older reference 100
#: (contracts §5): the smaller is safe.
INVITE_BATCH = 100


@dataclass(eq=False)
class SlackError(DeliveryError):
    code: str = ""
    #: Per-item errors of a partial failure (conversations.invite: ``{"user", "error"}`` each).
    errors: list[dict[str, Any]] = field(default_factory=list)


def is_channel_id(value: str) -> bool:
    return bool(_CHANNEL_ID.match(value))


class SlackSender:
    def __init__(self, token: SecretStr, base_url: str, *, timeout: float) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None

    def _web(self) -> AsyncWebClient:
        if self._client is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
            self._client = AsyncWebClient(
                token=self._token.get_secret_value(),
                base_url=self._base_url,
                timeout=math.ceil(self._timeout),
                session=self._session,
                retry_handlers=[],
            )
        return self._client

    async def call(self, method: str, **args: Any) -> dict[str, Any]:
        """Call ``method`` (e.g. ``chat.postMessage``) through the SDK's method of that name (so the
        wire format is the SDK's); the response data, or :class:`SlackError`."""
        function = getattr(self._web(), method.replace(".", "_"))
        try:
            response = await function(**args)
        except SlackApiError as exc:
            # Usually a SlackResponse; for a body that claims JSON and is not (an edge proxy's
            # error page) the SDK hands over aiohttp's ClientResponse, which names things apart.
            response = exc.response
            status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
            body = getattr(response, "data", None)
            data = body if isinstance(body, dict) else {}
            code = str(data.get("error") or f"HTTP {status}")
            headers = getattr(response, "headers", None) or {}
            retry_after = parse_retry_after(headers.get("Retry-After"))
            retryable = status == 429 or status >= 500 or status == 0 or code in TRANSIENT
            throttled = status == 429 or code in ("ratelimited", "rate_limited")
            items = data.get("errors")
            raise SlackError(
                retryable,
                f"Slack {method}: {code}",
                retry_after,
                throttled=throttled,
                code=code,
                errors=[e for e in items if isinstance(e, dict)] if isinstance(items, list) else [],
            ) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SlackError(True, f"Slack {method}: transport error ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001 (the SDK reading an answer it did not expect)
            # A 200 that is not JSON (text/plain from a proxy) fails inside slack-sdk's own
            # check with an AttributeError: what happened is unknown, so it is asked again
            # (a post is looked up first: sinks.effects.checked_before_repeating).
            raise SlackError(True, f"Slack {method}: unreadable answer ({type(exc).__name__})") from None
        data = response.data
        return data if isinstance(data, dict) else {}

    async def create_channel(self, name: str, *, private: bool = False) -> dict[str, str]:
        """A new channel (a private one for a security incident: ``is_private``)."""
        data = await self.call("conversations.create", name=name, is_private=private)
        channel = data.get("channel")
        return {
            "channel_id": _named(channel, "id", "conversations.create"),
            "channel_name": _named(channel, "name", "conversations.create"),
        }

    async def invite(self, channel: str, users: Sequence[str]) -> list[tuple[str, str]]:
        """Invite ``users`` (ids) to ``channel``, at most :data:`INVITE_BATCH` a call, with
        ``force`` so that one user Slack refuses does not keep the others out. Returns the
        refusals other than ``already_in_channel`` (a repeat after a crash) as ``(user, code)``.
        """
        refused: list[tuple[str, str]] = []
        for start in range(0, len(users), INVITE_BATCH):
            batch = list(users[start : start + INVITE_BATCH])
            try:
                await self.call("conversations.invite", channel=channel, users=batch, force=True)
            except SlackError as error:
                if error.retryable:
                    raise
                errors = error.errors or [{"user": ",".join(batch), "error": error.code}]
                refused += [
                    (str(e.get("user", "?")), str(e.get("error", "?")))
                    for e in errors
                    if e.get("error") != "already_in_channel"
                ]
        return refused

    async def usergroup_members(self, usergroup: str) -> list[str]:
        """The user ids of a user group (``usergroups.users.list``)."""
        data = await self.call("usergroups.users.list", usergroup=usergroup)
        users = data.get("users")
        return [user for user in users if isinstance(user, str)] if isinstance(users, list) else []

    async def post(self, channel: str, message: SlackMessage, key: str) -> dict[str, str]:
        """Post; ``key`` goes into the message metadata so an interrupted post can be found."""
        data = await self.call(
            "chat.postMessage",
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
        )
        return {
            "channel": _named(data, "channel", "chat.postMessage"),
            "ts": _named(data, "ts", "chat.postMessage"),
        }

    async def update(self, channel: str, ts: str, message: SlackMessage) -> dict[str, str]:
        data = await self.call(
            "chat.update", channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )
        return {"channel": str(data.get("channel", channel)), "ts": str(data.get("ts", ts))}

    async def pin(self, channel: str, ts: str) -> dict[str, str]:
        """Pin the message ``ts`` of ``channel`` (pins.add); a message pinned already (a retry
        after Slack took the first call) counts as pinned."""
        try:
            await self.call("pins.add", channel=channel, timestamp=ts)
        except SlackError as error:
            if error.code != "already_pinned":
                raise
        return {"channel": channel, "ts": ts}

    async def find_channel(self, name: str, *, private: bool = False) -> str | None:
        """The id of the public (or, ``private``, the private) channel called ``name``, if any
        (paginated conversations.list)."""
        cursor: str | None = None
        types = "private_channel" if private else "public_channel"
        for _ in range(50):
            args: dict[str, Any] = {"exclude_archived": True, "limit": 1000, "types": types}
            if cursor:
                args["cursor"] = cursor
            data = await self.call("conversations.list", **args)
            for channel in _dicts(data.get("channels")):
                if channel.get("name") == name:
                    return _named(channel, "id", "conversations.list")
            cursor = _cursor(data)
            if not cursor:
                return None
        return None

    async def find_message(
        self, channel: str, key: str, since: datetime | None = None
    ) -> dict[str, str] | None:
        """The message in ``channel`` posted after ``since`` (less a margin for clock skew) that
        carries ``key`` in its metadata, if any: every page of that stretch of history, since a
        busy channel can take hundreds of posts between an interrupted post and its check."""
        args: dict[str, Any] = {"channel": channel, "limit": 200, "include_all_metadata": True}
        if since is not None:
            args["oldest"] = f"{(since - HISTORY_SKEW).timestamp():.6f}"
        for _ in range(HISTORY_PAGES):
            data = await self.call("conversations.history", **args)
            for message in _dicts(data.get("messages")):
                metadata = message.get("metadata")
                payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
                if isinstance(payload, dict) and payload.get("key") == key:
                    return {"channel": channel, "ts": _named(message, "ts", "conversations.history")}
            cursor = _cursor(data)
            if not data.get("has_more") or not cursor:
                return None
            args["cursor"] = cursor
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = None


def _named(data: object, name: str, method: str) -> str:
    """The text field ``name`` of an answer (or of an item of it): an answer without it is one
    whose outcome is unknown, asked again like a lost one."""
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise SlackError(True, f"Slack {method}: the answer has no {name}", code="invalid_answer")
    return value


def _dicts(items: object) -> list[dict[str, Any]]:
    """The objects of a list in an answer (anything else in it, or no list, is passed over)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _cursor(data: dict[str, Any]) -> str | None:
    """The next page's cursor of a paginated answer, if any."""
    metadata = data.get("response_metadata")
    cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None
