"""The status page sink: one public incident per published sevflow incident.

The backend is Atlassian Statuspage when configured, else the built-in page; both get the same
changes from :func:`sinks.statuspage_format.status_changes`. The backend's incident id is stored
as the incident's external id, so later events update it instead of opening another.

The opening update promises another "within 30 minutes"; :meth:`StatusPageSink.follow_up`, run
every minute by the sinks process, keeps that promise on every open incident nothing changed for
that long. Statuspage's times are kept in the delivery log's references of the incident
(``page_status``, ``page_updated_at``, written with every change), the built-in page's in its own
table. Either way the age is checked again where the follow-up is claimed (a compare-and-set of
``page_updated_at``; the built-in page's change transaction), so a restart or a second sinks
replica never posts a second follow-up within the interval.
"""

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy.exc import SQLAlchemyError

from models.events import EventType, IncidentEvent
from models.severity import Severity
from sinks.base import Failure, each_event
from sinks.clock import Clock
from sinks.effects import Effects, Result
from sinks.errors import DeliveryError
from sinks.statuspage_format import (
    NONE,
    PLAYBOOK_PROMISE_MINUTES,
    Components,
    StatusChange,
    follow_up,
    status_changes,
)
from store.deliveries import Alongside

__all__ = [
    "FOLLOW_UP_EVERY",
    "FollowsUpItself",
    "LoggedFollowUps",
    "StatusBackend",
    "StatusPageSink",
    "WritesWithTheLog",
    "follow_up_until",
]

log = logging.getLogger(__name__)

#: The delivery log's references of a published incident (scope: the incident id).
PAGE_ID, PAGE_STATUS, PAGE_UPDATED_AT = "page_incident_id", "page_status", "page_updated_at"
#: How often the follow-up loop looks for silent incidents (seconds): a follow-up is at most this
#: late.
FOLLOW_UP_EVERY = 60.0


class StatusBackend(Protocol):
    #: True when repeating a create cannot open a second incident (then no reconcile is needed).
    idempotent_create: bool

    async def create(self, incident_id: str, change: StatusChange) -> str: ...

    async def update(self, external_id: str, incident_id: str, change: StatusChange) -> None: ...

    async def find(self, incident_id: str) -> str | None: ...

    async def close(self) -> None: ...


@runtime_checkable
class FollowsUpItself(Protocol):
    """A backend that keeps its incidents' update times (the built-in page): it posts the
    follow-ups, checking each incident's age in the transaction that adds the update."""

    async def follow_up_silent(self, before: datetime, promise: int) -> int: ...


@runtime_checkable
class WritesWithTheLog(Protocol):
    """A backend kept in the delivery log's own database (the built-in page): its changes are
    written in the transaction that confirms them in the log (:data:`store.deliveries.Alongside`)
    instead of being called."""

    def create_alongside(self, incident_id: str, change: StatusChange) -> Alongside: ...

    def update_alongside(
        self, external_id: str, incident_id: str, change: StatusChange
    ) -> Alongside: ...


@runtime_checkable
class ShowsUpdates(Protocol):
    """A vendor whose update is a new public post (Statuspage's PATCH appends an incident update
    and notifies subscribers): an update whose answer was lost is looked up, never sent twice."""

    async def shows(self, external_id: str, change: StatusChange) -> bool: ...


@runtime_checkable
class LoggedFollowUps(Protocol):
    """A vendor (Statuspage) that can post an update keeping the status; the sink keeps the
    times in the delivery log."""

    async def follow_up(self, external_id: str, status: str, body: str) -> None: ...


class StatusPageSink:
    name = "statuspage"

    def __init__(
        self,
        backend: StatusBackend,
        effects: Effects,
        severities: Sequence[Severity],
        *,
        follow_up_minutes: int = PLAYBOOK_PROMISE_MINUTES,
        components: Components = NONE,
    ) -> None:
        self._backend = backend
        self._effects = effects
        self._severities = frozenset(severities)
        #: What the texts promise: an update within this many minutes (0: follow-ups are off).
        self._promise = follow_up_minutes
        #: The services shown (SEVFLOW_STATUSPAGE_COMPONENTS): no other service is named.
        self._components = components

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        await self._effects.preload(events)

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        return await each_event(events, self._deliver)

    async def _deliver(self, event: IncidentEvent) -> None:
        refs = await self._effects.log.refs(self.name, event.incident_id)
        external = refs.get("page_incident_id")
        if event.type is EventType.STATUSPAGE_PUBLISHED and await self._effects.done(event, "create"):
            return  # a redelivery of the publication that created the page: shown already
        changes = status_changes(
            event,
            published=external is not None,
            severities=self._severities,
            promise=self._promise,
            components=self._components,
        )
        for change in changes:
            if isinstance(self._backend, WritesWithTheLog):
                external = await self._with_confirmation(self._backend, event, change, external)
            else:
                external = await self._vendor_change(event, change, external)

    async def _vendor_change(
        self, event: IncidentEvent, change: StatusChange, external: str | None
    ) -> str | None:
        """One change on a vendor's page, through the delivery log; the page's id after it."""
        if change.kind == "create":
            result = await self._effects.once(
                [event],
                "create",
                functools.partial(self._create, event.incident_id, change),
                reconcile=(
                    None
                    if self._backend.idempotent_create
                    else functools.partial(self._find, event.incident_id)
                ),
                refs=functools.partial(self._page_refs, change),
            )
            return result[PAGE_ID]
        if external is not None:
            if isinstance(self._backend, LoggedFollowUps):
                # Before the call: a follow-up claimed from now on sees this change coming
                # and stays away (it would put an older status back over it).
                await self._effects.log.put_refs(
                    self.name,
                    event.incident_id,
                    self._page_refs(change, {}),
                    self._effects.clock.now(),
                )
            await self._effects.once(
                [event],
                change.kind,
                functools.partial(self._update, external, event.incident_id, change),
                reconcile=(
                    functools.partial(self._shown, self._backend, external, change)
                    if isinstance(self._backend, ShowsUpdates)
                    else None
                ),
                refs=functools.partial(self._page_refs, change),
            )
        return external

    async def _with_confirmation(
        self,
        backend: "WritesWithTheLog",
        event: IncidentEvent,
        change: StatusChange,
        external: str | None,
    ) -> str | None:
        """One change on a page kept in the delivery log's own database (the built-in one),
        written in the transaction of its confirmation: one transaction instead of two, and the
        page never shows a change the log does not hold as done, nor the reverse. A change done
        already (a redelivery) is not written again. The page's id after it."""
        if change.kind == "create":
            write = backend.create_alongside(event.incident_id, change)
            result = {PAGE_ID: event.incident_id}
        elif external is not None:
            write = backend.update_alongside(external, event.incident_id, change)
            result = {}
        else:
            return None
        log, event_id = self._effects.log, str(event.event_id)
        record = await log.step(self.name, event_id, change.kind)
        if record is not None and record.status == "done":
            return record.result.get(PAGE_ID, external)
        now = self._effects.clock.now()
        await log.confirm(self.name, [event_id], change.kind, event.incident_id, now,
                          result=result, refs=result, alongside=write)  # fmt: skip
        return result.get(PAGE_ID, external)

    def _page_refs(self, change: StatusChange, result: Result) -> Result:
        """The page's incident id (create) and what the follow-ups need to know of a change,
        recorded with its confirmation."""
        refs = {PAGE_STATUS: change.status, PAGE_UPDATED_AT: self._effects.clock.now().isoformat()}
        if PAGE_ID in result:
            refs[PAGE_ID] = result[PAGE_ID]
        return refs

    async def _create(self, incident_id: str, change: StatusChange) -> Result:
        return {"page_incident_id": await self._backend.create(incident_id, change)}

    async def _find(self, incident_id: str) -> Result | None:
        found = await self._backend.find(incident_id)
        return {"page_incident_id": found} if found else None

    @staticmethod
    async def _shown(vendor: ShowsUpdates, external: str, change: StatusChange) -> Result | None:
        return {} if await vendor.shows(external, change) else None

    async def _update(self, external: str, incident_id: str, change: StatusChange) -> Result:
        await self._backend.update(external, incident_id, change)
        return {}

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """During a storm SEV3/SEV4 openings are not published one by one; the public page keeps
        showing the SEV1/SEV2 incidents (nothing to send)."""
        return []

    async def follow_up(self, interval: timedelta) -> int:
        """Post the follow-up on every open incident without a public update for ``interval``;
        how many were posted. Errors are logged and the incident is tried on the next call."""
        now = self._effects.clock.now()
        if isinstance(self._backend, FollowsUpItself):
            try:
                return await self._backend.follow_up_silent(now - interval, self._promise)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("status page follow-ups not posted this time: %s", type(exc).__name__)
                return 0
        if not isinstance(self._backend, LoggedFollowUps):
            return 0
        try:
            published = await self._effects.log.open_scopes(
                self.name, key=PAGE_ID, status_key=PAGE_STATUS, closed="resolved"
            )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("status page follow-ups not listed this time: %s", type(exc).__name__)
            return 0
        posted = 0
        for incident_id, refs in published.items():
            try:
                posted += await self._follow_up_logged(self._backend, incident_id, refs, now, interval)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("follow-up of %s not posted: %s", incident_id, type(exc).__name__)
        return posted

    async def _follow_up_logged(
        self,
        vendor: LoggedFollowUps,
        incident_id: str,
        refs: dict[str, str],
        now: datetime,
        interval: timedelta,
    ) -> int:
        """One Statuspage incident: claim the follow-up by moving ``page_updated_at`` from the
        value read to ``now`` (another replica's claim, or a change confirmed meanwhile, makes
        the swap fail), then post it; a failed post gives the claim back for the next try."""
        status, body = refs[PAGE_STATUS], follow_up(refs[PAGE_STATUS], self._promise)
        last = refs.get(PAGE_UPDATED_AT)
        stamp = now.isoformat()
        if body is None:
            return 0
        if last is None:  # published before sevflow kept the time: start counting now
            await self._effects.log.swap_ref(self.name, incident_id, PAGE_UPDATED_AT, None, stamp, now)
            return 0
        if datetime.fromisoformat(last) > now - interval or self._effects.breaker.is_open:
            return 0
        if not await self._effects.log.swap_ref(
            self.name, incident_id, PAGE_UPDATED_AT, last, stamp, now
        ):
            return 0
        # One attempt, not the sink's retry loop: a retry an hour later could land after a
        # change (a resolution) and put the old status back; the next round tries again instead.
        try:
            await vendor.follow_up(refs[PAGE_ID], status, body)
        except DeliveryError as error:
            log.warning("follow-up of %s not posted: %s", incident_id, error)
            if error.retryable:  # a permanent refusal waits for the next interval
                await self._effects.log.swap_ref(
                    self.name, incident_id, PAGE_UPDATED_AT, stamp, last, now
                )
            return 0
        return 1

    async def close(self) -> None:
        await self._backend.close()


async def follow_up_until(
    sink: StatusPageSink,
    interval: timedelta,
    clock: Clock,
    stop: asyncio.Event,
    every: float = FOLLOW_UP_EVERY,
) -> None:
    """Call :meth:`StatusPageSink.follow_up` every ``every`` seconds until ``stop``.

    Never raises: the sinks process stops when one of its tasks fails, and a follow-up that went
    wrong must not take the sinks' deliveries down with it; the next round tries again.
    """
    while not stop.is_set():
        try:
            posted = await sink.follow_up(interval)
        except Exception:  # see the docstring: logged, and the next round tries again
            log.exception("status page follow-ups failed; trying again in %.0f s", every)
        else:
            if posted:
                log.info("status page: %d follow-up update(s) posted", posted)
        stopped = asyncio.ensure_future(stop.wait())
        slept = asyncio.ensure_future(clock.sleep(every))
        await asyncio.wait([stopped, slept], return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopped, slept):
            waiter.cancel()
