"""Response times from the incident store: the same :class:`IncidentTimes` the topic gives.

The incident's latest state (severity, state, opening, current resolution) comes from the
``incidents`` table; its acknowledgements, resolutions and reopenings from the timeline
(``incident_events``, the outbox, written in the same transaction as each change), whose
documents give the severity in effect at each response. Both are turned into times by
:func:`analytics.figures.times_of`, as the topic's events are. Two queries, however many
incidents, so a report over a year of incidents stays fast.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.figures import RESPONSE_TYPES, IncidentTimes, times_of
from models.events import IncidentEvent
from models.incident import Incident
from store.schema import incident_events, incidents

__all__ = ["load_incident_times"]


async def load_incident_times(
    engine: AsyncEngine, *, since: datetime | None = None, until: datetime | None = None
) -> list[IncidentTimes]:
    """The times of every incident opened in ``[since, until)``, ordered by incident id."""
    window = select(incidents.c.id)
    if since is not None:
        window = window.where(incidents.c.opened_at >= since)
    if until is not None:
        window = window.where(incidents.c.opened_at < until)
    incident_query = select(incidents.c.document).where(incidents.c.id.in_(window))
    response_events = (
        select(incident_events.c.incident_id, incident_events.c.document)
        .where(
            incident_events.c.incident_id.in_(window),
            incident_events.c.type.in_([t.value for t in RESPONSE_TYPES]),
        )
        .order_by(incident_events.c.incident_id, incident_events.c.sequence)
    )
    timelines: dict[str, list[IncidentEvent]] = {}
    async with engine.connect() as conn:
        documents = (await conn.execute(incident_query)).scalars().all()
        for incident_id, document in (await conn.execute(response_events)).all():
            timelines.setdefault(incident_id, []).append(IncidentEvent.model_validate_json(document))
    result = []
    for document in documents:
        incident = Incident.model_validate_json(document).snapshot()
        result.append(times_of(incident, timelines.get(incident.id, [])))
    return sorted(result, key=lambda t: t.incident_id)
