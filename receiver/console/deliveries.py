"""An incident's deliveries per sink, from what the delivery log knows (store/delivery_steps.py)
and the dead letters the DLQ topic holds for it.

The log keeps one row per (sink, event, step): ``done`` once the vendor confirmed it, ``pending``
from the moment the call began until then. A step still pending is an attempt that was not
confirmed: in flight, being retried by the sink's retry policy (sinks/retry.py: backoff until its
deadline, then the dead-letter topic), or interrupted by a crash (the next attempt asks the vendor
before repeating it). The log counts no attempts and keeps no errors; the dead letter says why a
delivery was given up. Pure: ``now`` is an argument.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from store.delivery_steps import DeliveryStep

__all__ = ["SINKS", "DeadLetterView", "SinkDeliveries", "summarize"]

#: The sinks shown even with nothing delivered, in this order; others follow by name.
SINKS = ("pagerduty", "slack", "statuspage", "email")
#: A pending step older than this is no longer a call in flight: being retried, or interrupted.
IN_FLIGHT = timedelta(seconds=30)


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter of the incident (the DLQ topic): why the sink gave up."""

    event_id: str
    reason: str
    retryable: bool
    failed_at: str


@dataclass(frozen=True)
class SinkDeliveries:
    """One sink's deliveries for the incident: ``sent`` confirmed steps, ``unconfirmed`` steps
    begun and not confirmed (``retrying`` of them past :data:`IN_FLIGHT`), the steps themselves
    (oldest first), the latest confirmation, and the dead letters (None: not read, e.g. no admin
    scope)."""

    sink: str
    sent: int = 0
    unconfirmed: int = 0
    retrying: int = 0
    last_sent_at: datetime | None = None
    steps: tuple[DeliveryStep, ...] = ()
    dead_letters: tuple[DeadLetterView, ...] | None = None

    @property
    def state(self) -> str:
        """``dead-lettered``, ``retrying``, ``in flight``, ``sent`` or ``nothing sent``."""
        if self.dead_letters:
            return "dead-lettered"
        if self.retrying:
            return "retrying"
        if self.unconfirmed:
            return "in flight"
        return "sent" if self.sent else "nothing sent"


def summarize(
    steps: Iterable[DeliveryStep],
    now: datetime,
    letters: Sequence[Mapping[str, Any]] | None = None,
) -> list[SinkDeliveries]:
    """Per sink: counts and steps from the log; ``letters`` the DLQ topic's records of this
    incident (as ``GET /api/dlq`` lists them), None when they were not read."""
    by_sink: dict[str, list[DeliveryStep]] = {sink: [] for sink in SINKS}
    for step in steps:
        by_sink.setdefault(step.sink, []).append(step)
    views = []
    for sink in (*SINKS, *sorted(set(by_sink) - set(SINKS))):
        mine = by_sink[sink]
        done = [s for s in mine if s.status == "done"]
        pending = [s for s in mine if s.status != "done"]
        views.append(
            SinkDeliveries(
                sink=sink,
                sent=len(done),
                unconfirmed=len(pending),
                retrying=sum(1 for s in pending if now - s.started_at > IN_FLIGHT),
                last_sent_at=max((s.delivered_at for s in done if s.delivered_at), default=None),
                steps=tuple(mine),
                dead_letters=None if letters is None else _letters(letters, sink),
            )
        )
    return views


def _letters(letters: Sequence[Mapping[str, Any]], sink: str) -> tuple[DeadLetterView, ...]:
    return tuple(
        DeadLetterView(
            event_id=str(letter.get("event_id") or "-"),
            reason=str(letter.get("reason") or ""),
            retryable=bool(letter.get("retryable")),
            failed_at=str(letter.get("failed_at") or ""),
        )
        for letter in letters
        if letter.get("sink") == sink
    )
