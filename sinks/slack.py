"""The Slack sink: incident channel, announcement in ``#incidents``, updates, resolution.

For an incident whose severity is announced::

    opened       create #incident-YYYYMMDD-slug (a taken name gets -2, -3 …), post the playbook's
                 announcement to #incidents (Acknowledge / Resolve buttons) and into the channel,
                 then the incident's runbook (models/runbooks.py) in the channel, pinned
    updates      new alerts, severity change, acknowledgement, escalation … posted in the channel;
                 updates waiting in one batch are coalesced into one message (≈ 1 post/s/channel)
    ack, sev     the #incidents announcement is edited to show the new state
    resolved     the playbook's "INCIDENT RESOLVED" in the channel; announcement edited

A security or data-breach incident gets a **private** channel (``is_private``) with the Slack users
and user groups of the policy's security (and data-breach) contacts and of the incident's team's
``private_channel_invite`` invited (sinks/slack_invites.py); its name is posted to their Slack
channels (``#security-incidents``), and ``#incidents`` learns only the severity and "security
incident" (:func:`sinks.slack_format.security_announcement`, also when the announcement is edited).
An incident that becomes security only after its channel was created keeps that channel (Slack
offers bots no way to make it private): the announcement turns neutral from then on, and the
security contact is told through the escalation's notice.

An escalation whose targets include a Slack channel (the playbook's security contact,
``#security-incidents``) is also posted in that channel, whatever the incident's severity: the
escalation policy, not the announcement routing, decides who is told.

Announcements, security announcements, the SEV4 morning digest and a storm digest's listing of
a team's incidents go to its team's channel (README "Teams"; listings: sinks/slack_digests.py).

Every call goes through :class:`Effects` (delivery log, retries, breaker). Posts carry a metadata
key so that a post interrupted by a crash is found in the channel history instead of repeated;
channel creation records the name it is trying so an interrupted create is found by name.
"""

import functools
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from models.escalation import DIGEST_STEP, Target, escalation_targets
from models.events import EventType, IncidentEvent, IncidentState
from models.severity import Severity
from sinks.base import Failure
from sinks.effects import Effects, Result, effect_key
from sinks.errors import DeliveryError
from sinks.pacing import ChannelPacer
from sinks.slack_client import SlackError, SlackSender, is_channel_id
from sinks.slack_digests import MORNING_SCOPE, STORM_SCOPE, ListingPoster, team_scope
from sinks.slack_format import (
    SlackMessage,
    announcement,
    channel_names,
    coalesce,
    digest,
    escalation_notice,
    is_security,
    listed_title,
    morning_digest,
    private_channel_notice,
    refreshes_announcement,
    resolution,
    runbook_messages,
    security_announcement,
    update_line,
)
from sinks.slack_invites import invitees
from sinks.slack_note import note_message

__all__ = ["SlackSink"]

log = logging.getLogger(__name__)

#: Numbered names tried when a channel name is taken, before the one with the incident's id.
NAME_ATTEMPTS = 20
_OPENING = (EventType.OPENED, EventType.REOPENED, EventType.SEVERITY_CHANGED)


class SlackSink:
    name = "slack"

    def __init__(
        self,
        sender: SlackSender,
        effects: Effects,
        severities: Sequence[Severity],
        *,
        announce_channel: str,
        lead: str,
        pacer: ChannelPacer,
        security_contacts: Sequence[Target] = (),
        emailing: bool = False,
        team_channels: Mapping[str, str] | None = None,
        team_invites: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._sender = sender
        self._effects = effects
        self._severities = frozenset(severities)
        self._announce = announce_channel
        #: The announcement channel of each team that has its own (models.teams), by team name.
        self._team_channels = dict(team_channels or {})
        #: The Slack users and user groups each team invites to its private (security) channels.
        self._team_invites = {team: tuple(who) for team, who in (team_invites or {}).items()}
        self._listings = ListingPoster(self.name, effects, sender, pacer)
        #: Channel name → id, as conversations.list found them (ids map to themselves).
        self._channel_ids: dict[str, str] = {}
        self._lead = lead
        self._pacer = pacer
        #: The policy's security and data-breach contacts: the Slack users and user groups among
        #: them are invited to a security incident's private channel, its channels are told.
        self._security = [t for t in security_contacts if t.kind == "slack"]
        #: The email sink runs beside this one: email targets are "email queued", not "not emailed".
        self._emailing = emailing

    # --- the event loop of one incident ---------------------------------------------------
    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        await self._effects.preload(events)

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        failures: list[Failure] = []
        waiting: list[IncidentEvent] = []  # updates to coalesce into one post
        for event in events:
            if event.incident.canary:
                continue  # sevflow's own canary: nothing for people to read (models.canary)
            try:
                refs = await self._effects.log.refs(self.name, event.incident_id)
                if await self._opens(event, refs):
                    failures += await self._flush(waiting, refs)
                    waiting = []
                    await self._open(event)
                    continue
                if event.type is EventType.ESCALATED and event.data.get("level") == DIGEST_STEP:
                    await self._list_in_digest(event)
                elif event.type is EventType.ESCALATED:
                    await self._notify_channels(event, refs)
                if "channel_id" not in refs:
                    continue  # never announced here (severity not routed, or in a storm digest)
                if event.type is EventType.NOTE_ADDED:  # in order: the updates before it first
                    failures += await self._flush(waiting, refs)
                    waiting = []
                    await self._post_once(event, "note", refs["channel_id"], note_message(event))
                if update_line(
                    event, emailing=self._emailing
                ) is not None and not await self._effects.done(event, "update"):
                    waiting.append(event)
                if event.type is EventType.RESOLVED:
                    failures += await self._flush(waiting, refs)
                    waiting = []
                    await self._post_once(event, "resolution", refs["channel_id"], resolution(event))
                if "announce_ts" in refs and refreshes_announcement(event):
                    await self._refresh(event, refs)
            except DeliveryError as error:
                failures.append(Failure(event, error))
        if waiting:
            failures += await self._flush(
                waiting, await self._effects.log.refs(self.name, waiting[0].incident_id)
            )
        return failures

    async def _opens(self, event: IncidentEvent, refs: dict[str, str]) -> bool:
        """An opening event of an announced severity, for an incident without a channel, or the
        event that began creating it (a redelivery finishes its remaining steps)."""
        if (
            event.type not in _OPENING
            or event.incident.severity not in self._severities
            or event.incident.state is IncidentState.RESOLVED
        ):
            return False
        if "channel_id" not in refs:
            return True
        return await self._effects.log.step(self.name, str(event.event_id), "channel") is not None

    # --- steps ------------------------------------------------------------------------------
    async def _open(self, event: IncidentEvent) -> None:
        channel = await self._effects.once(
            [event],
            "channel",
            functools.partial(self._create_channel, event),
            reconcile=functools.partial(self._find_channel, event),
            refs=lambda r: {
                "channel_id": r["channel_id"],
                "channel_name": r["channel_name"],
                **({"private": "1"} if r.get("private") == "1" else {}),
            },
        )
        message = announcement(event.incident, lead=self._lead, channel=channel["channel_name"])
        public = message
        if channel.get("private") == "1":
            await self._invite_contacts(event, channel["channel_id"], channel["channel_name"])
            public = security_announcement(event.incident)
        announce_id = await self._announce_channel(event.incident.team)
        posted = await self._post_once(event, "announce", announce_id, public)
        await self._effects.log.put_refs(
            self.name,
            event.incident_id,
            {"announce_channel": posted["channel"], "announce_ts": posted["ts"]},
            self._effects.clock.now(),
        )
        await self._post_once(event, "intro", channel["channel_id"], message)
        await self._post_runbook(event, channel["channel_id"])

    async def _post_runbook(self, event: IncidentEvent, channel_id: str) -> None:
        """The runbook matched when the incident opened, posted in its channel and its first
        message pinned; each part and the pin once (a redelivered opening repeats none)."""
        for number, message in enumerate(runbook_messages(event.incident), start=1):
            step = "runbook" if number == 1 else f"runbook:{number}"
            posted = await self._post_once(event, step, channel_id, message)
            if number == 1:
                await self._effects.once(
                    [event],
                    "runbook-pin",
                    functools.partial(self._sender.pin, posted["channel"], posted["ts"]),
                )

    async def _create_channel(self, event: IncidentEvent) -> Result:
        private = is_security(event.incident)
        flag = {"private": "1"} if private else {}
        for name in channel_names(event.incident, NAME_ATTEMPTS):
            await self._effects.log.note(
                self.name, str(event.event_id), "channel", {"trying": name, **flag}
            )
            try:
                return {**await self._sender.create_channel(name, private=private), **flag}
            except SlackError as error:
                if error.code != "name_taken":
                    raise
        raise DeliveryError(False, f"Slack conversations.create: {NAME_ATTEMPTS + 1} names taken")

    async def _find_channel(self, event: IncidentEvent) -> Result | None:
        record = await self._effects.log.step(self.name, str(event.event_id), "channel")
        trying = record.result.get("trying") if record else None
        if not trying or record is None:
            return None
        private = record.result.get("private") == "1"
        channel_id = await self._sender.find_channel(trying, private=private)
        if not channel_id:
            return None
        return {
            "channel_id": channel_id,
            "channel_name": trying,
            **({"private": "1"} if private else {}),
        }

    async def _invite_contacts(self, event: IncidentEvent, channel_id: str, name: str) -> None:
        """Invite the security contacts' Slack users and the incident's team's
        (``private_channel_invite``), user groups expanded, to the private channel, then tell
        the contacts' Slack channels its name; each step once."""
        team = self._team_invites.get(event.incident.team, ())

        async def members_of(group: str) -> list[str]:
            find = functools.partial(self._sender.usergroup_members, group)
            return await self._effects.retried(find, "usergroups.users.list")

        users = await invitees((*(t.to for t in self._security), *team), members_of)

        async def invite() -> Result:
            refused = await self._sender.invite(channel_id, users) if users else []
            for user, code in refused:
                log.warning("Slack: %s not invited to #%s: %s", user, name, code)
            return {"invited": str(len(users) - len(refused))}

        invited = await self._effects.once([event], "invite", invite)
        for position, target in enumerate(self._security):
            if target.to.startswith("#") or is_channel_id(target.to):
                where = await self._channel_id(target.to, f"{target.label or 'security'} channel")
                notice = private_channel_notice(event.incident, name, int(invited.get("invited", 0)))
                await self._post_once(event, f"private:{position}", where, notice)

    async def _announce_channel(self, team: str | None = None) -> str:
        """The announcement channel of ``team`` (README "Teams"); the default team's, and
        notices' and storm digests', is ``announce_channel``."""
        channel = self._team_channels.get(team, self._announce) if team else self._announce
        return await self._channel_id(channel, "announcement channel")

    async def _channel_id(self, channel: str, what: str) -> str:
        """The id of ``channel`` (``#name``, ``name`` or an id), looked up once."""
        if is_channel_id(channel):
            return channel
        if channel not in self._channel_ids:
            name = channel.lstrip("#")
            found = await self._effects.retried(
                functools.partial(self._sender.find_channel, name), f"{what} lookup"
            )
            if found is None:
                raise DeliveryError(False, f"Slack: {what} #{name} not found")
            self._channel_ids[channel] = found
        return self._channel_ids[channel]

    async def _notify_channels(self, event: IncidentEvent, refs: dict[str, str]) -> None:
        """Post an escalation in each Slack channel it names (users, groups: in the updates)."""
        if event.data.get("by_hand"):
            return  # asked of the incident channel, notified to nobody
        for position, target in enumerate(escalation_targets(event.data)):
            if target.kind != "slack" or not (target.to.startswith("#") or is_channel_id(target.to)):
                continue
            channel = await self._channel_id(target.to, f"{target.label or 'escalation'} channel")
            told = any(t.to == target.to for t in self._security)
            message = escalation_notice(event, refs.get("channel_name"), security_contact=told)
            await self._post_once(event, f"notify:{position}", channel, message)

    async def _post_once(
        self,
        event: IncidentEvent,
        step: str,
        channel: str,
        message: SlackMessage,
        covers: Sequence[IncidentEvent] = (),
    ) -> Result:
        events = list(covers) or [event]
        key = effect_key(events[-1], step)
        rank = event.incident.severity.rank

        async def send() -> Result:
            async with self._pacer.slot(channel, rank):
                return await self._sender.post(channel, message, key)

        find = functools.partial(
            self._sender.find_message, channel, key, since=min(e.occurred_at for e in events)
        )
        return await self._effects.once(events, step, send, reconcile=find)

    async def _flush(self, waiting: list[IncidentEvent], refs: dict[str, str]) -> list[Failure]:
        if not waiting:
            return []
        public = refs.get("private") != "1"
        lines = [x for e in waiting if (x := update_line(e, emailing=self._emailing, public=public))]
        try:
            await self._post_once(waiting[-1], "update", refs["channel_id"], coalesce(lines), waiting)
        except DeliveryError as error:
            return [Failure(e, error) for e in waiting]
        return []

    async def _refresh(self, event: IncidentEvent, refs: dict[str, str]) -> None:
        """Edit the #incidents announcement to the incident's current state (chat.update is
        idempotent, so a repeat after a crash is harmless)."""
        message = (
            security_announcement(event.incident)
            if is_security(event.incident)
            else announcement(event.incident, lead=self._lead, channel=refs.get("channel_name", ""))
        )
        channel, ts = refs["announce_channel"], refs["announce_ts"]
        await self._effects.once(
            [event], "announce-update", functools.partial(self._sender.update, channel, ts, message)
        )

    # --- notices (forced maintenance windows) ----------------------------------------------
    async def announce(
        self, key: str, scope: str, message: SlackMessage, since: datetime, team: str | None = None
    ) -> Result:
        """Post ``message`` in ``team``'s announcement channel once for ``key`` (delivery log, retries,
        breaker; a ``pending`` entry is found in the history from ``since``, not posted again)."""
        channel = await self._announce_channel(team)
        return await self._listings.notice(key, scope, channel, message, since)

    # --- listings: the next business day's morning digest (SEV4), storm digests -------------
    async def _list_in_digest(self, event: IncidentEvent) -> None:
        """Add the incident to its day's morning digest in its team's announcement channel: one
        message per day and channel, posted with the first incident listed and edited as others
        join (sinks/slack_digests.py)."""
        day, team = event.data.get("digest_day", ""), event.incident.team
        scope = team_scope(f"{MORNING_SCOPE}{day}", team, team in self._team_channels)
        known, members = await self._listings.listed(scope)
        members[event.incident_id] = f"[{event.incident.severity}] {listed_title(event.incident)}"
        channel = await self._announce_channel(team)
        text = morning_digest(day, members)
        rank = event.incident.severity.rank
        await self._listings.post_or_edit(
            [event], "morning-digest", scope, known, members, channel, text, rank
        )

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """One message per storm and announcement channel, edited as SEV3/SEV4 incidents join
        it: a team with its own channel has its incidents listed there, the others in
        ``#incidents``."""
        routed = [e for e in events if e.incident.severity in self._severities]
        by_team: dict[str, list[IncidentEvent]] = {}
        for event in routed:
            team = event.incident.team if event.incident.team in self._team_channels else ""
            by_team.setdefault(team, []).append(event)
        failures: list[Failure] = []
        for team, listed in by_team.items():
            try:
                await self._storm_listing(storm_id, since, team, listed)
            except DeliveryError as error:
                failures += [Failure(e, error) for e in listed]
        return failures

    async def _storm_listing(
        self, storm_id: str, since: datetime, team: str, events: Sequence[IncidentEvent]
    ) -> None:
        scope = team_scope(f"{STORM_SCOPE}{storm_id}", team, bool(team))
        known, members = await self._listings.listed(scope)
        for e in events:
            members[e.incident_id] = f"[{e.incident.severity}] {listed_title(e.incident)}"
        channel = await self._announce_channel(team or None)
        text = digest(members, since)
        await self._listings.post_or_edit(events, "digest", scope, known, members, channel, text, 3)

    async def close(self) -> None:
        await self._sender.close()
