"""The contract every sink implements, and what the worker does with failures.

A sink receives the events of **one incident**, in order (the worker runs incidents
concurrently, SEV1 first), and returns the events it could not deliver with the reason; the
worker dead-letters those. Storm digests arrive through :meth:`Sink.digest`.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
    """Deliver events one by one; a failed event is reported and the next one still goes out."""
    failures = []
    for event in events:
        try:
            await deliver(event)
        except DeliveryError as error:
            failures.append(Failure(event, error))
    return failures
