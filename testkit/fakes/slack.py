"""A fake Slack Web API (contracts §3.7): the methods sevflow calls, with Slack's rules.

Arguments are merged from the query string, a form body and a JSON body. ``Authorization:
Bearer xox[bp]-…`` (or a ``token`` field) is required: missing → ``not_authed``, wrong →
``invalid_auth``. Errors are HTTP 200 ``{"ok": false, "error": …}``; ``ratelimited`` is HTTP 429
with ``Retry-After``. Optionally enforces Slack's ~1 post/s per channel on a clock.

Message sizes as Slack documents them: testkit/fakes/slack_limits.py.

People and user groups (docs.slack.dev ``users.info`` / ``usergroups.users.list``): ``add_user``
registers a member of a team (``is_restricted`` a multi-channel guest, ``is_ultra_restricted`` a
single-channel guest), ``add_usergroup`` a group's members; an unknown user is ``user_not_found``,
an unknown group ``no_such_subteam``. Interaction response URLs (``/actions/<team>/<id>/<secret>``,
what ``response_url`` points at on hooks.slack.com) take a JSON message with ``text`` or ``blocks``
and an optional ``response_type`` of ``ephemeral`` (the default) or ``in_channel``; what they
received is in ``responses``. ``pins.add`` pins a message (``pinned`` lists them).
"""

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from testkit.fakes.http import FakeServer, Request, Response
from testkit.fakes.slack_limits import NAME, message_problem

# The name the unit tests import it by.
_message_problem = message_problem

__all__ = ["FakeSlack", "SlackChannel", "SlackUser"]

_ids = itertools.count(1)


@dataclass
class SlackChannel:
    id: str
    name: str
    is_member: bool = True
    is_archived: bool = False
    is_private: bool = False
    members: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SlackUser:
    id: str
    team_id: str
    name: str = "someone"
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    deleted: bool = False


def _flag(value: Any) -> bool:
    """A boolean argument as Slack reads it: ``true``/``1`` (form, query) or JSON true."""
    return value is True or str(value).lower() in ("1", "true")


def _ok(**data: Any) -> Response:
    return Response(200, {"ok": True, **data})


def _error(code: str, **extra: Any) -> Response:
    return Response(200, {"ok": False, "error": code, **extra})


class FakeSlack:
    def __init__(self, token: str, *, clock: Any = None, post_interval: float | None = None) -> None:
        self.token = token
        self.server = FakeServer(self._handle)
        self.channels: dict[str, SlackChannel] = {}
        self.clock = clock
        self.post_interval = post_interval
        self._last_post: dict[str, float] = {}
        self._ts = itertools.count(1)
        self.calls: list[tuple[str, dict[str, Any]]] = []  # accepted (ok) calls
        self.lock = threading.Lock()
        self.users: dict[str, SlackUser] = {}
        self.usergroups: dict[str, list[str]] = {}
        #: Messages posted to a response URL: (its path, the JSON message).
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.add_channel("incidents")
        self.add_channel("general")

    @property
    def url(self) -> str:
        return self.server.url + "/api/"

    @property
    def faults(self):  # type: ignore[no-untyped-def]
        return self.server.faults

    def start(self) -> "FakeSlack":
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def add_channel(
        self, name: str, *, is_member: bool = True, is_private: bool = False
    ) -> SlackChannel:
        # Private channels' ids start with C as well nowadays (docs.slack.dev, conversations).
        channel = SlackChannel(f"C{next(_ids):09d}", name, is_member, is_private=is_private)
        self.channels[channel.id] = channel
        return channel

    def add_user(self, user_id: str, team_id: str, **flags: Any) -> SlackUser:
        user = SlackUser(user_id, team_id, **flags)
        self.users[user_id] = user
        return user

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> None:
        self.usergroups[usergroup_id] = list(members)

    def response_url(self, team_id: str = "T111") -> str:
        """A response URL as Slack puts it into an interaction payload."""
        return f"{self.server.url}/actions/{team_id}/{next(_ids)}/responsesecret"

    def by_name(self, name: str) -> SlackChannel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def chatter(self, channel_name: str, count: int) -> None:
        """``count`` messages posted to the channel by someone else (people, other apps)."""
        channel = self.by_name(channel_name)
        assert channel is not None
        for n in range(count):
            channel.messages.append({"type": "message", "ts": self._next_ts(), "text": f"chat {n}"})

    def _next_ts(self) -> str:
        # Slack's ts is the posting time (seconds.micro-ish), unique and increasing per channel.
        now = self.clock.now().timestamp() if self.clock is not None else time.time()
        return f"{int(now)}.{next(self._ts):06d}"

    def posts(self, channel_name: str) -> list[dict[str, Any]]:
        channel = self.by_name(channel_name)
        return list(channel.messages) if channel else []

    def created(self) -> list[str]:
        return [args["name"] for method, args in self.calls if method == "conversations.create"]

    # --- HTTP ---------------------------------------------------------------------------------
    def _args(self, request: Request) -> dict[str, Any] | None:
        args: dict[str, Any] = dict(request.query)
        content_type = request.headers.get("content-type", "")
        if request.body:
            if content_type.startswith("application/x-www-form-urlencoded"):
                args.update(parse_qsl(request.body.decode(), keep_blank_values=True))
            elif content_type.startswith("application/json"):
                body = json.loads(request.body)
                if not isinstance(body, dict):
                    return None
                args.update(body)
            else:
                return None
        return args

    def _handle(self, request: Request) -> Response:
        if request.path.startswith("/actions/"):
            return self._respond(request)
        if request.method not in ("GET", "POST") or not request.path.startswith("/api/"):
            return Response(404, b"<html>Not Found</html>", content_type="text/html")
        method = request.path.removeprefix("/api/")
        args = self._args(request)
        if args is None:
            return _error("invalid_form_data")
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return _error("not_authed")
        if not re.match(r"^xox[bp]-", token) or token != self.token:
            return _error("invalid_auth")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        response: Response = handler(args)
        if response.status == 200 and response.body.get("ok"):
            self.calls.append((method, args))
        return response

    def _channel(self, ref: Any) -> SlackChannel | None:
        if not isinstance(ref, str):
            return None
        return self.channels.get(ref) or self.by_name(ref.lstrip("#"))

    def _conversations_create(self, args: dict[str, Any]) -> Response:
        name = args.get("name")
        if not name:
            return _error("invalid_name_required")
        if len(name) > 80:
            return _error("invalid_name_maxlength")
        if not NAME.match(name):
            return _error("invalid_name_specials")
        if re.fullmatch(r"[-_]+", name):
            return _error("invalid_name_punctuation")
        if self.by_name(name) is not None:
            return _error("name_taken")
        private = _flag(args.get("is_private"))
        channel = self.add_channel(name, is_private=private)
        channel.members.append("U0BOT")
        return _ok(channel={"id": channel.id, "name": name, "is_channel": True, "is_private": private,
                            "is_member": True, "created": 1504554479, "creator": "U0BOT",
                            "name_normalized": name})  # fmt: skip

    def _conversations_invite(self, args: dict[str, Any]) -> Response:
        """Contracts §3.3/§3.7: ``users`` comma separated; per-user errors gathered in
        ``errors[]``; with ``force`` the valid ones are invited despite the others."""
        channel = self.channels.get(args.get("channel", ""))
        if channel is None:
            return _error("channel_not_found")
        if channel.is_archived:
            return _error("is_archived")
        if not channel.is_member:
            return _error("not_in_channel")
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return _error("no_user")
        if len(users) > 100:
            return _error("too_many_users")
        errors, valid = [], []
        for user in users:
            if user == "U0BOT":
                errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif user not in self.users:
                errors.append({"user": user, "ok": False, "error": "user_not_found"})
            elif user in channel.members:
                errors.append({"user": user, "ok": False, "error": "already_in_channel"})
            else:
                valid.append(user)
        if errors and not _flag(args.get("force")):
            return _error(errors[0]["error"], errors=errors)
        channel.members.extend(valid)
        if errors:
            return _error(errors[0]["error"], errors=errors)
        return _ok(channel={"id": channel.id, "name": channel.name, "is_private": channel.is_private})

    def _usergroups_users_list(self, args: dict[str, Any]) -> Response:
        group = args.get("usergroup")
        if not group:
            return _error("missing_argument")
        if group not in self.usergroups:
            return _error("no_such_subteam")
        return _ok(users=list(self.usergroups[group]))

    def _chat_postMessage(self, args: dict[str, Any]) -> Response:  # noqa: N802
        channel = self._channel(args.get("channel"))
        if channel is None:
            return _error("channel_not_found")
        if channel.is_archived:
            return _error("is_archived")
        if not channel.is_member:
            return _error("not_in_channel")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not args.get("text") and not blocks:
            return _error("no_text")
        problem = message_problem(args, blocks)
        if problem:
            return _error(problem)
        if self.post_interval is not None and self.clock is not None:
            now = self.clock.monotonic()
            last = self._last_post.get(channel.id)
            if last is not None and now - last < self.post_interval:
                return Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
            self._last_post[channel.id] = now
        ts = self._next_ts()
        message = {"type": "message", "ts": ts, "text": args.get("text", ""), "blocks": blocks or []}
        if isinstance(args.get("metadata"), dict):
            message["metadata"] = args["metadata"]
        channel.messages.append(message)
        return _ok(channel=channel.id, ts=ts, message={**message, "bot_id": "B0BOT"})

    def _chat_update(self, args: dict[str, Any]) -> Response:
        channel = self.channels.get(args.get("channel", ""))
        if channel is None:
            return _error("channel_not_found")
        message = next((m for m in channel.messages if m["ts"] == args.get("ts")), None)
        if message is None:
            return _error("message_not_found")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not args.get("text") and not blocks:
            return _error("no_text")
        problem = message_problem(args, blocks)
        if problem:
            return _error(problem)
        message["text"] = args.get("text", message["text"])
        if "blocks" in args:
            message["blocks"] = blocks
        message.setdefault("edits", 0)
        message["edits"] += 1
        return _ok(channel=channel.id, ts=message["ts"], text=message["text"])

    def _pins_add(self, args: dict[str, Any]) -> Response:
        """pins.add (docs.slack.dev): ``channel`` and ``timestamp`` (the message's ``ts``) are
        both required; an unknown channel is ``channel_not_found``, no timestamp
        ``no_item_specified``, a ts not in the channel ``message_not_found``, a second pin of
        the same message ``already_pinned``."""
        channel = self._channel(args.get("channel"))
        if channel is None:
            return _error("channel_not_found")
        if not args.get("timestamp"):
            return _error("no_item_specified")
        if not channel.is_member:
            return _error("not_in_channel")
        message = next((m for m in channel.messages if m["ts"] == args["timestamp"]), None)
        if message is None:
            return _error("message_not_found")
        if channel.id in message.get("pinned_to", []):
            return _error("already_pinned")
        message.setdefault("pinned_to", []).append(channel.id)
        return _ok()

    def pinned(self, channel_name: str) -> list[dict[str, Any]]:
        """The messages pinned in the channel, oldest first."""
        channel = self.by_name(channel_name)
        if channel is None:
            return []
        return [m for m in channel.messages if channel.id in m.get("pinned_to", [])]

    def _conversations_list(self, args: dict[str, Any]) -> Response:
        limit = int(args.get("limit", 100))
        start = int(args.get("cursor", "0") or 0)
        exclude = str(args.get("exclude_archived", "")).lower() in ("1", "true")
        # types defaults to public_channel; a private channel is listed only to its members.
        types = set(str(args.get("types") or "public_channel").split(","))
        channels = [
            c
            for c in self.channels.values()
            if not (exclude and c.is_archived)
            and ("private_channel" if c.is_private else "public_channel") in types
            and (c.is_member or not c.is_private)
        ]
        page = channels[start : start + limit]
        cursor = str(start + limit) if start + limit < len(channels) else ""
        listed = [
            {"id": c.id, "name": c.name, "is_member": c.is_member, "is_archived": c.is_archived}
            for c in page
        ]
        return _ok(channels=listed, response_metadata={"next_cursor": cursor})

    def _conversations_history(self, args: dict[str, Any]) -> Response:
        channel = self.channels.get(args.get("channel", ""))
        if channel is None:
            return _error("channel_not_found")
        include = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = min(int(args.get("limit", 100)), 999)  # Slack caps a page at 999
        oldest = float(args.get("oldest", 0) or 0)  # exclusive, as without inclusive=true
        start = int(args.get("cursor", "0") or 0)
        newest_first = [m for m in reversed(channel.messages) if float(m["ts"]) > oldest]
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        messages = [{k: v for k, v in m.items() if include or k != "metadata"} for m in page]
        return _ok(
            messages=messages,
            has_more=more,
            response_metadata={"next_cursor": str(start + limit) if more else ""},
        )

    def _users_info(self, args: dict[str, Any]) -> Response:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return _error("user_not_found")
        return _ok(
            user={
                "id": user.id,
                "team_id": user.team_id,
                "name": user.name,
                "deleted": user.deleted,
                "is_bot": False,
                "is_restricted": user.is_restricted,
                "is_ultra_restricted": user.is_ultra_restricted,
            }
        )

    def _respond(self, request: Request) -> Response:
        """A response URL: a JSON message, as incoming webhooks take (no token: the URL is it)."""
        if request.method != "POST":
            return Response(405, b"invalid_method", content_type="text/plain")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Response(400, b"invalid_payload", content_type="text/plain")
        try:
            message = json.loads(request.body)
        except ValueError:
            return Response(400, b"invalid_payload", content_type="text/plain")
        if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
            return Response(400, b"no_text", content_type="text/plain")
        if message.get("response_type", "ephemeral") not in ("ephemeral", "in_channel"):
            return Response(400, b"invalid_payload", content_type="text/plain")
        with self.lock:
            self.responses.append((request.path, message))
        return Response(200, b"ok", content_type="text/plain")
