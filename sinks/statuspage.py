"""The status page sink: one public incident per published sevflow incident.

The backend is Atlassian Statuspage when configured, else the built-in page; both get the same
changes from :func:`sinks.statuspage_format.status_changes`. The backend's incident id is stored
as the incident's external id, so later events update it instead of opening another.
"""

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from models.events import IncidentEvent
from models.severity import Severity
from sinks.base import Failure, each_event
from sinks.effects import Effects, Result
from sinks.statuspage_format import StatusChange, status_changes

__all__ = ["StatusBackend", "StatusPageSink"]


class StatusBackend(Protocol):
    #: True when repeating a create cannot open a second incident (then no reconcile is needed).
    idempotent_create: bool

    async def create(self, incident_id: str, change: StatusChange) -> str: ...

    async def update(self, external_id: str, incident_id: str, change: StatusChange) -> None: ...

    async def find(self, incident_id: str) -> str | None: ...

    async def close(self) -> None: ...


class StatusPageSink:
    name = "statuspage"

    def __init__(self, backend: StatusBackend, effects: Effects, severities: Sequence[Severity]) -> None:
        self._backend = backend
        self._effects = effects
        self._severities = frozenset(severities)

    async def preload(self, events: Sequence[IncidentEvent]) -> None:
        await self._effects.preload(events)

    async def handle(self, events: Sequence[IncidentEvent]) -> list[Failure]:
        return await each_event(events, self._deliver)

    async def _deliver(self, event: IncidentEvent) -> None:
        refs = await self._effects.log.refs(self.name, event.incident_id)
        external = refs.get("page_incident_id")
        for change in status_changes(event, published=external is not None, severities=self._severities):
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
                    refs=lambda r: {"page_incident_id": r["page_incident_id"]},
                )
                external = result["page_incident_id"]
            elif external is not None:
                await self._effects.once(
                    [event],
                    change.kind,
                    functools.partial(self._update, external, event.incident_id, change),
                )

    async def _create(self, incident_id: str, change: StatusChange) -> Result:
        return {"page_incident_id": await self._backend.create(incident_id, change)}

    async def _find(self, incident_id: str) -> Result | None:
        found = await self._backend.find(incident_id)
        return {"page_incident_id": found} if found else None

    async def _update(self, external: str, incident_id: str, change: StatusChange) -> Result:
        await self._backend.update(external, incident_id, change)
        return {}

    async def digest(
        self, storm_id: str, since: datetime, events: Sequence[IncidentEvent]
    ) -> list[Failure]:
        """During a storm SEV3/SEV4 openings are not published one by one; the public page keeps
        showing the SEV1/SEV2 incidents (nothing to send)."""
        return []

    async def close(self) -> None:
        await self._backend.close()
