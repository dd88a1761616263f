"""The PagerDuty sink: trigger, acknowledge and resolve one PagerDuty alert per incident.

``dedup_key`` = incident id is PagerDuty's own idempotency key, so even a trigger repeated after a
crash lands on the same alert; the delivery log still keeps the call count at one. The dedup_key is
stored as the incident's external id: acknowledge/resolve go out only for incidents that were paged.

A canary incident (:mod:`models.canary`) goes to the canary's own routing key
(``SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY``) at severity ``info``, never to the normal one nor to an
escalation level's; without that key it is not sent at all. Each canary trigger PagerDuty
accepted sets :attr:`PagerDutySink.canary_delivered_at` (exported as
``sevflow_canary_last_delivered_timestamp_seconds``).

An incident of a team with its own routing key (README "Teams") pages that team's service, and
so do its escalation levels without a service of their own; the default team's incidents, and
any team without a key of its own, page ``SEVFLOW_PAGERDUTY_ROUTING_KEY`` as before. A team's
``escalation.routing_keys`` name its levels' services, tried before
``SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS`` for its incidents. The dedup_key is the same
either way. A storm's digest alert is one per service: a team with its own routing key gets its
own (``sevflow-storm-<storm>/<team>``), listing its incidents only.
"""

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime

from models.events import EventType, IncidentEvent
from models.pagerduty_keys import parse_key, storm_key
from models.severity import Severity
from sinks.base import Failure, each_event
from sinks.effects import UNREAD, Effects
from sinks.errors import DeliveryError
from sinks.pagerduty_client import PagerDutySender
from sinks.pagerduty_format import (
    PAGED_MATTERS,
    PagerDutyCall,
    canary_calls,
    digest_call,
    escalation_calls,
    escalation_followups,
    pagerduty_calls,
)

__all__ = ["PagerDutySink"]

#: Scope prefix of a storm digest's refs: one key per summarised incident (value: its severity,
#: or SETTLED once it has resolved).
STORM_SCOPE = "storm:"
SETTLED = "resolved"
#: Between a storm's id and the team whose own service its digest alert is on (``<storm>/<team>``).
STORM_TEAM = "/"
#: Refs prefix of the alerts escalation opened: ``escalation:<target>[/repeat<n>]`` → dedup_key.
ESCALATION_REF = "escalation:"


def _escalation_ref(ref: str, result: dict[str, str]) -> dict[str, str]:
    return {f"{ESCALATION_REF}{ref}": result["dedup_key"]}


class PagerDutySink:
    name = "pagerduty"

    def __init__(
        self,
        sender: PagerDutySender,
        effects: Effects,
        severities: Sequence[Severity],
        escalation_senders: Mapping[str, PagerDutySender] | None = None,
        canary_sender: PagerDutySender | None = None,
        team_senders: Mapping[str, PagerDutySender] | None = None,
        team_escalation_senders: Mapping[str, Mapping[str, PagerDutySender]] | None = None,
    ) -> None:
        self._sender = sender
        #: The teams with a routing key of their own (models.teams), by team name.
        self._teams = dict(team_senders or {})
        self._effects = effects
        self._severities = frozenset(severities)
        #: PagerDuty targets of the escalation policy that have their own routing key.
        self._escalation = dict(escalation_senders or {})
        #: A team's own escalation services (its teams file entry), tried before the policy's.
        self._team_escalation = {t: dict(s) for t, s in (team_escalation_senders or {}).items()}
        self._canary = canary_sender
        #: When PagerDuty last accepted (202) a canary's trigger; None since start until one has.
        self.canary_delivered_at: datetime | None = None

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        await self._effects.preload(events)

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        return await each_event(events, self._deliver)

    async def _deliver(self, event: IncidentEvent) -> None:
        if event.incident.canary:
            await self._page_canary(event)
            return
        if event.incident.severity in self._severities:
            # A severity that does not page the primary pages no escalation level either: a
            # level is never an incident's first page (SEVFLOW_PAGERDUTY_SEVERITIES).
            await self._escalate(event)
        await self._page(event)
        if event.type is EventType.RESOLVED:
            await self._settle_storms(event)

    async def _page(self, event: IncidentEvent) -> None:
        candidates = pagerduty_calls(event, paged=True, severities=self._severities)
        if not candidates:
            return  # nothing to send whatever the state: no need to read it (alert churn, storms)
        likely = candidates[0]
        refs, prior = await self._effects.log.state(
            self.name, event.incident_id, str(event.event_id), likely.action
        )
        sender = self._sender_for(event)
        calls = candidates
        if event.type in PAGED_MATTERS and "dedup_key" not in refs:
            calls = pagerduty_calls(event, paged=False, severities=self._severities)
        for call in calls:
            await self._effects.once(
                [event],
                call.action,
                functools.partial(self._send_with, sender, call),
                refs=lambda result: {"dedup_key": result["dedup_key"]},
                prior=prior if call.action == likely.action else UNREAD,
            )

    async def _page_canary(self, event: IncidentEvent) -> None:
        """A canary incident's trigger and resolve, on the canary's routing key only."""
        if self._canary is None:
            return
        candidates = canary_calls(event, paged=True)
        if not candidates:
            return
        refs, prior = await self._effects.log.state(
            self.name, event.incident_id, str(event.event_id), candidates[0].action
        )
        for call in canary_calls(event, paged="dedup_key" in refs):
            send = functools.partial(self._send_canary, self._canary, call)
            await self._effects.once(
                [event],
                call.action,
                send,
                refs=lambda result: {"dedup_key": result["dedup_key"]},
                prior=prior if call.action == candidates[0].action else UNREAD,
            )

    async def _send_canary(self, sender: PagerDutySender, call: PagerDutyCall) -> dict[str, str]:
        result = await self._send_with(sender, call)
        if call.action == "trigger":  # PagerDuty answered 202: the canary made it end to end
            self.canary_delivered_at = self._effects.clock.now()
        return result

    async def _settle_storms(self, event: IncidentEvent) -> None:
        """Resolve a storm's digest alert once every incident it summarised has resolved; until
        then it stays open (a resolved member is marked, the digest is not re-sent)."""
        for scope in await self._effects.log.scopes_with_key(self.name, STORM_SCOPE, event.incident_id):
            await self._effects.log.put_refs(
                self.name, scope, {event.incident_id: SETTLED}, self._effects.clock.now()
            )
            members = await self._effects.log.refs(self.name, scope)
            if any(value != SETTLED for value in members.values()):
                continue
            storm = scope.removeprefix(STORM_SCOPE)
            sender = self._teams.get(storm.partition(STORM_TEAM)[2], self._sender)
            call = PagerDutyCall("resolve", storm_key(storm))
            await self._effects.once(
                [event], f"resolve:{scope}", functools.partial(self._send_with, sender, call)
            )

    async def _escalate(self, event: IncidentEvent) -> None:
        """Page an escalation level's own PagerDuty services; close them with the incident."""
        own = self._team_escalation.get(event.incident.team, {})
        work = escalation_calls(event, self._escalation.keys() | own.keys())
        if not work and event.type.value in {"acknowledged", "resolved"}:
            refs = await self._effects.log.refs(self.name, event.incident_id)
            paged = {
                k.removeprefix(ESCALATION_REF): v
                for k, v in refs.items()
                if k.startswith(ESCALATION_REF)
            }
            work = escalation_followups(event, paged)
        for _, call in work:
            key = parse_key(call.dedup_key)
            ref = key.reference
            # A target without a routing key of its own is the incident's own service (the
            # primary paged again): its team's.
            sender = own.get(key.target) or self._escalation.get(key.target) or self._sender_for(event)
            await self._effects.once(
                [event],
                f"{call.action}:escalation:{ref}",
                functools.partial(self._send_with, sender, call),
                refs=functools.partial(_escalation_ref, ref),
            )

    def _sender_for(self, event: IncidentEvent) -> PagerDutySender:
        """The sender of the incident's team's service (the default routing key's without one)."""
        return self._teams.get(event.incident.team, self._sender)

    async def _send_with(self, sender: PagerDutySender, call: PagerDutyCall) -> dict[str, str]:
        return {"dedup_key": await sender.send(call)}

    async def _send(self, call: PagerDutyCall) -> dict[str, str]:
        return {"dedup_key": await self._sender.send(call)}

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """One PagerDuty alert per storm and service (same dedup_key), re-triggered as incidents
        join it: a team with a routing key of its own has its incidents summarised on its
        service (``<storm>/<team>``), the others on the default routing key's."""
        paged = [e for e in events if e.incident.severity in self._severities and not e.incident.canary]
        by_team: dict[str, list[IncidentEvent]] = {}
        for event in paged:
            team = event.incident.team if event.incident.team in self._teams else ""
            by_team.setdefault(team, []).append(event)
        failures: list[Failure] = []
        for team, listed in by_team.items():
            storm = f"{storm_id}{STORM_TEAM}{team}" if team else storm_id
            try:
                await self._digest_one(storm, since, listed, self._teams.get(team, self._sender))
            except DeliveryError as error:
                failures += [Failure(e, error) for e in listed]
        return failures

    async def _digest_one(
        self, storm: str, since: datetime, paged: Sequence[IncidentEvent], sender: PagerDutySender
    ) -> None:
        scope = f"{STORM_SCOPE}{storm}"
        known = await self._effects.log.refs(self.name, scope)
        snapshots = [e.incident for e in paged]
        total = len(known.keys() | {s.id for s in snapshots})
        call = digest_call(storm, snapshots, f"{since:%Y-%m-%d %H:%M} UTC", total=total)
        await self._effects.once(
            paged,
            "digest",
            functools.partial(self._send_with, sender, call),
            refs=lambda _result: {s.id: str(s.severity) for s in snapshots},
            scope=scope,
        )

    async def close(self) -> None:
        self._sender.close()
        team_escalation = [s for senders in self._team_escalation.values() for s in senders.values()]
        for sender in (*self._escalation.values(), *self._teams.values(), *team_escalation):
            sender.close()
        if self._canary is not None:
            self._canary.close()
