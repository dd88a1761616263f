"""Slack posts in an announcement channel that are not one incident's: the messages that list
incidents and grow (the storm digest, the next business day's morning digest of SEV4) and the
notices of forced maintenance windows.

One message per scope (a storm or a day, and a team with its own announcement channel), posted
with the first incident listed and edited (``chat.update``, idempotent) as others join. The
delivery log keeps, under the scope, the incidents listed (``id → line``) and the message's
``_channel`` and ``_ts``; a post interrupted after Slack took it is found in the channel's
history by its key instead of being posted twice.
"""

import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from models.events import IncidentEvent
from sinks.effects import Effects, Result, checked_before_repeating, effect_key
from sinks.pacing import ChannelPacer
from sinks.slack_client import SlackSender
from sinks.slack_format import SlackMessage

__all__ = ["MORNING_SCOPE", "STORM_SCOPE", "ListingPoster", "team_scope"]

#: Scope prefix of a morning digest's refs: one key per listed incident, ``_channel``/``_ts``.
MORNING_SCOPE = "morning-digest:"
#: Scope prefix of a storm digest's refs (the same shape).
STORM_SCOPE = "storm:"


def team_scope(scope: str, team: str, own_channel: bool) -> str:
    """One listing per announcement channel: a team with its own lists only its incidents
    there (``<scope>/<team>``); the default team's, and a team's without one, share ``scope``."""
    return f"{scope}/{team}" if own_channel else scope


@dataclass(frozen=True)
class ListingPoster:
    """Posts or edits one listing message through the sink's effects (delivery log, retries,
    breaker) and pacer."""

    sink: str
    effects: Effects
    sender: SlackSender
    pacer: ChannelPacer

    async def listed(self, scope: str) -> tuple[dict[str, str], dict[str, str]]:
        """What the delivery log knows of ``scope``, and the incidents listed so far."""
        known = await self.effects.log.refs(self.sink, scope)
        return known, {k: v for k, v in known.items() if not k.startswith("_")}

    async def post_or_edit(
        self,
        events: Sequence[IncidentEvent],
        step: str,
        scope: str,
        known: Mapping[str, str],
        members: Mapping[str, str],
        channel_id: str,
        text: SlackMessage,
        rank: int,
    ) -> Result:
        """Post ``text`` in ``channel_id`` the first time, else edit the message ``known``
        names; ``members`` (the incidents it lists) recorded with the message under ``scope``."""
        send: Callable[[], Awaitable[Result]]
        reconcile: Callable[[], Awaitable[Result | None]] | None = None
        if "_ts" in known:  # an edit: chat.update may be repeated
            send = functools.partial(self.sender.update, known["_channel"], known["_ts"], text)
        else:
            key = effect_key(events[-1], step)

            async def post() -> Result:
                async with self.pacer.slot(channel_id, rank):
                    return await self.sender.post(channel_id, text, key)

            send = post
            since = min(e.occurred_at for e in events)
            reconcile = functools.partial(self.sender.find_message, channel_id, key, since=since)
        return await self.effects.once(
            list(events),
            step,
            send,
            refs=lambda r: {**members, "_channel": r["channel"], "_ts": r["ts"]},
            scope=scope,
            reconcile=reconcile,
        )

    async def notice(
        self, key: str, scope: str, channel_id: str, message: SlackMessage, since: datetime
    ) -> Result:
        """Post ``message`` in ``channel_id`` once for ``key`` (a notice's id: the delivery log's
        event id). A ``pending`` entry (a process stopped mid-post) is reconciled from the
        channel's history, not posted again; ``since``: when the notice was written."""
        marker = json.dumps([key, "notice"])
        log_, clock = self.effects.log, self.effects.clock
        record = await log_.step(self.sink, key, "notice")
        if record is not None and record.status == "done":
            return record.result
        find = functools.partial(self.sender.find_message, channel_id, marker, since=since)
        result = await self.effects.retried(find, "notice (reconcile)", scope) if record else None
        if result is None:
            await log_.begin(self.sink, key, "notice", scope, clock.now())

            async def post() -> Result:
                async with self.pacer.slot(channel_id, 2):  # after SEV1 posts, before the rest
                    return await self.sender.post(channel_id, message, marker)

            result = await self.effects.retried(checked_before_repeating(post, find), "notice", scope)
        await log_.confirm(self.sink, [key], "notice", scope, clock.now(), result=result)
        return result
