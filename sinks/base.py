"""The contract every sink implements, and what the worker does with failures.

A sink receives the events of **one incident**, in order (the worker runs incidents
concurrently, SEV1 first), and returns the events it could not deliver with the reason; the
worker dead-letters those. Storm digests arrive through :meth:`Sink.digest`.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from models.events import IncidentEvent
from sinks.errors import DeliveryError

__all__ = ["Failure", "Sink", "each_event"]


@dataclass(frozen=True)
class Failure:
    event: IncidentEvent
    error: DeliveryError


class Sink(Protocol):
    name: str

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        """Read what the delivery log knows about a polled batch, in one round trip, before the
        batch's incidents are handled (per-event reads would serialise on the database)."""
        ...

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        """Deliver the events of one incident, in order."""
        ...

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """Add SEV3/SEV4 openings to this storm's single digest."""
        ...

    async def close(self) -> None: ...


async def each_event(
    events: Sequence[IncidentEvent], deliver: Callable[[IncidentEvent], Awaitable[None]]
) -> list[Failure]:
    """Deliver one incident's events in order. Once one fails, the rest are held back with it
    (reported with the same reason): what follows depends on it (an acknowledgement of a page
    never sent is skipped as "not paged"), so a replay of the dead letters sends them in order."""
    failures: list[Failure] = []
    for event in events:
        if failures:
            first = failures[0]
            reason = f"held back after {first.event.type.value} failed: {first.error.reason}"
            failures.append(Failure(event, replace(first.error, reason=reason)))
            continue
        try:
            await deliver(event)
        except DeliveryError as error:
            failures.append(Failure(event, error))
    return failures
