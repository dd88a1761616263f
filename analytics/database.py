"""Response times from the incident store: the same :class:`IncidentTimes` the topic gives.

The incident's latest state (severity, state, opening, current resolution) comes from the
``incidents`` table; the first acknowledgement and first resolution from the timeline
(``incident_events``, the outbox, written in the same transaction as each change). Two queries,
however many incidents, so a report over a year of incidents stays fast.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.figures import IncidentTimes, acknowledged_at_of, resolved_at_of
from models.events import EventType, IncidentEvent, IncidentState
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
    first_events = (
        select(incident_events.c.incident_id, incident_events.c.type, incident_events.c.document)
        .where(
            incident_events.c.incident_id.in_(window),
            incident_events.c.type.in_([EventType.ACKNOWLEDGED.value, EventType.RESOLVED.value]),
        )
        .order_by(incident_events.c.incident_id, incident_events.c.sequence)
    )
    firsts: dict[tuple[str, str], IncidentEvent] = {}
    async with engine.connect() as conn:
        documents = (await conn.execute(incident_query)).scalars().all()
        for incident_id, type_, document in (await conn.execute(first_events)).all():
            if (incident_id, type_) not in firsts:
                firsts[(incident_id, type_)] = IncidentEvent.model_validate_json(document)
    result = []
    for document in documents:
        incident = Incident.model_validate_json(document)
        resolved = incident.state is IncidentState.RESOLVED
        result.append(
            IncidentTimes(
                incident_id=incident.id,
                severity=incident.severity,
                state=incident.state,
                opened_at=incident.opened_at,
                first_acknowledged_at=acknowledged_at_of(
                    firsts.get((incident.id, EventType.ACKNOWLEDGED.value))
                ),
                first_resolved_at=resolved_at_of(firsts.get((incident.id, EventType.RESOLVED.value))),
                resolved_at=incident.resolved_at if resolved else None,
            )
        )
    return sorted(result, key=lambda t: t.incident_id)
