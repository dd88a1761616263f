"""Response times from the incident store: the same :class:`IncidentTimes` the topic gives.

The incident's latest state (severity, state, opening, current resolution) comes from the
``incidents`` table; its acknowledgements, resolutions and reopenings from the timeline
(``incident_events``, the outbox, written in the same transaction as each change), whose
documents give the severity in effect at each response. Both are turned into times by
:func:`analytics.incident_times.times_of`, as the topic's events are. Two queries, however many
incidents, so a report over a year of incidents stays fast.
"""

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.incident_times import RESPONSE_TYPES, IncidentTimes, times_of
from models.events import IncidentEvent
from models.incident import Incident
from store.incident_reads import incident_reads

__all__ = ["load_incident_times", "load_response_timelines"]


async def load_incident_times(
    engine: AsyncEngine, *, since: datetime | None = None, until: datetime | None = None
) -> list[IncidentTimes]:
    """The times of every incident opened in ``[since, until)``, ordered by incident id."""
    async with incident_reads(engine) as reads:
        documents, events = await reads.opened_with_events(
            [t.value for t in RESPONSE_TYPES], since=since, until=until
        )
    timelines = _timelines(events)
    result = []
    for document in documents:
        incident = Incident.model_validate_json(document).snapshot()
        result.append(times_of(incident, timelines.get(incident.id, [])))
    return sorted(result, key=lambda t: t.incident_id)


async def load_response_timelines(
    engine: AsyncEngine, incident_ids: Collection[str]
) -> dict[str, list[IncidentEvent]]:
    """The acknowledgements, resolutions and reopenings of these incidents, each in sequence
    order (what :func:`~analytics.incident_times.times_of` needs): one query."""
    async with incident_reads(engine) as reads:
        events = await reads.events_of(incident_ids, [t.value for t in RESPONSE_TYPES])
    return _timelines(events)


def _timelines(events: Iterable[tuple[str, str]]) -> dict[str, list[IncidentEvent]]:
    timelines: dict[str, list[IncidentEvent]] = {}
    for incident_id, document in events:
        timelines.setdefault(incident_id, []).append(IncidentEvent.model_validate_json(document))
    return timelines
