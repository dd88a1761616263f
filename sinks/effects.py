"""Each vendor call at most once per (sink, event, step): the delivery log around the retry policy.

::

    done in the log?        -> return what the vendor answered then (no call)
    pending in the log?     -> ask the vendor (reconcile); found -> record it, no call
    otherwise               -> write pending (when the effect can be reconciled), call with
                               retries (reconciling before a repeat whose first try may have
                               been applied), record done + external ids

Calls without a reconcile are idempotent at the vendor (PagerDuty's dedup_key, chat.update), so
repeating one after a crash is harmless and no pending row is written.

The log is written only after the vendor confirmed the call, so a crash between the two leaves a
``pending`` row, and the next attempt reconciles instead of repeating the effect.
"""

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from models.events import IncidentEvent
from sinks.breaker import CircuitBreaker
from sinks.clock import Clock
from sinks.errors import DeliveryError
from sinks.retry import RetryPolicy, call_with_retry
from store.deliveries import DeliveryLog, StepRecord

__all__ = ["UNREAD", "Effects", "Result", "Unread", "checked_before_repeating"]

Result = dict[str, str]


class Unread:
    """Marks "the caller did not read the delivery log for this step"."""


UNREAD = Unread()
T = TypeVar("T")


@dataclass
class Effects:
    sink: str
    log: DeliveryLog
    clock: Clock
    policy: RetryPolicy
    breaker: CircuitBreaker

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        """Read the log for a batch of events (and their incidents) in one round trip."""
        await self.log.preload(
            self.sink, [str(e.event_id) for e in events], sorted({e.incident_id for e in events})
        )

    async def done(self, event: IncidentEvent, step: str) -> bool:
        record = await self.log.step(self.sink, str(event.event_id), step)
        return record is not None and record.status == "done"

    async def retried(self, call: Callable[[], Awaitable[T]], what: str, key: str | None = None) -> T:
        """A read-only vendor call (a lookup) under the same retry policy and breaker; ``key``:
        the incident it is for."""
        return await call_with_retry(
            call,
            policy=self.policy,
            clock=self.clock,
            breaker=self.breaker,
            what=f"{self.sink} {what}",
            key=key,
        )

    async def once(
        self,
        events: Sequence[IncidentEvent],
        step: str,
        send: Callable[[], Awaitable[Result]],
        *,
        reconcile: Callable[[], Awaitable[Result | None]] | None = None,
        refs: Callable[[Result], Result] | None = None,
        scope: str | None = None,
        prior: StepRecord | Unread | None = UNREAD,
    ) -> Result:
        """Perform ``send`` for ``events`` (one, or several coalesced into one call) once.

        ``refs`` picks the external ids to keep from the vendor's answer (stored under ``scope``,
        by default the incident id); ``reconcile`` finds the effect of an interrupted attempt;
        ``prior`` is the step's log entry when the caller already read it (:meth:`DeliveryLog.state`).
        """
        primary = events[-1]
        ids = [str(e.event_id) for e in events]
        record = (
            await self.log.step(self.sink, str(primary.event_id), step)
            if isinstance(prior, Unread)
            else prior
        )
        if record is not None and record.status == "done":
            return record.result
        result: Result | None = None
        if record is not None and reconcile is not None:
            result = await call_with_retry(
                reconcile,
                policy=self.policy,
                clock=self.clock,
                breaker=self.breaker,
                what=f"{self.sink} {step} (reconcile)",
                key=primary.incident_id,
            )
        if result is None:
            if reconcile is not None:  # a pending row is only worth writing if it can be checked
                await self.log.begin(self.sink, ids[-1], step, primary.incident_id, self.clock.now())
            result = await call_with_retry(
                checked_before_repeating(send, reconcile),
                policy=self.policy,
                clock=self.clock,
                breaker=self.breaker,
                what=f"{self.sink} {step}",
                key=primary.incident_id,
            )
        await self.log.confirm(
            self.sink,
            ids,
            step,
            primary.incident_id,
            self.clock.now(),
            result=result,
            refs=refs(result) if refs else None,
            scope=scope,
        )
        return result


def checked_before_repeating(
    send: Callable[[], Awaitable[Result]],
    reconcile: Callable[[], Awaitable[Result | None]] | None,
) -> Callable[[], Awaitable[Result]]:
    """``send``, with ``reconcile`` asked before each repeat of an attempt whose outcome is unknown.

    A call that timed out, lost its connection or got a 5xx (or an answer that could not be read)
    may have had its effect at the vendor all the same. Without an idempotency key (a Slack post
    or channel, a Statuspage incident or update) its repeat made a second message, a channel
    ``…-2`` or a second public update; the reconcile that found an interrupted attempt ran only
    after a crash. A throttled answer (429, Statuspage's 420) is a refusal: nothing to look for."""
    if reconcile is None:
        return send
    unsure = False

    async def attempt() -> Result:
        nonlocal unsure
        if unsure:
            found = await reconcile()
            if found is not None:
                return found
            unsure = False
        try:
            return await send()
        except DeliveryError as error:
            unsure = not error.throttled
            raise

    return attempt


def effect_key(event: IncidentEvent, step: str) -> str:
    """The marker a vendor object carries so an interrupted attempt can be recognised."""
    return json.dumps([str(event.event_id), step])
