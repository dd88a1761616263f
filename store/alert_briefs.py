"""The brief stored state of a batch's alerts (models/incident/briefs.py), read in one statement
per chunk of fingerprints: what a repeat is decided on, without the alerts' labels and
annotations or their incidents' documents.

Read by the worker (streams/pipeline.py) after it locked the batch's groups: each row carries
the incident the alert counts in (its state, resolution time and group) and whether that
incident is its group's latest, all as of one statement. Read through the driver
(store/driver_sql.py): a repeat costs its row, and SQLAlchemy's result processing of the row's
three timestamps was most of it.
"""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from models.events import IncidentState
from models.incident.briefs import AlertBrief, IncidentBrief
from store.chunking import chunks
from store.driver_sql import selecting_among, values_for
from store.key_lists import PerDialect
from store.schema import alerts, incident_groups, incidents

__all__ = ["read_briefs"]

_QUERY = PerDialect(
    lambda among: (
        select(
            alerts.c.fingerprint,
            alerts.c.status,
            alerts.c.starts_at,
            alerts.c.last_received_at,
            alerts.c.incident_id,
            alerts.c.suppressed_by,
            alerts.c.kafka_partition,
            alerts.c.kafka_offset,
            incidents.c.group_key,
            incidents.c.state,
            incidents.c.resolved_at,
            incident_groups.c.incident_id,
        )
        .select_from(
            alerts.outerjoin(incidents, incidents.c.id == alerts.c.incident_id).outerjoin(
                incident_groups, incident_groups.c.group_key == incidents.c.group_key
            )
        )
        .where(among(alerts.c.fingerprint, "fingerprints"))
    )
)
# (One statement built once: the fingerprints are bound, not coerced into it one by one.)


async def read_briefs(conn: AsyncConnection, fingerprints: Iterable[str]) -> dict[str, AlertBrief]:
    """The brief state of the alerts of ``fingerprints`` that are stored, by fingerprint."""
    briefs: dict[str, AlertBrief] = {}
    seen: dict[str, IncidentBrief] = {}  # an incident's alerts share its brief
    time = values_for(conn).read_time
    for chunk in chunks(sorted(set(fingerprints))):
        statement, keys = selecting_among(conn, _QUERY, "fingerprints", chunk)
        rows = await statement.rows(conn, keys)
        for (
            fp,
            status,
            starts,
            last,
            incident_id,
            held,
            part,
            offset,
            group,
            state,
            resolved,
            latest,
        ) in rows:
            incident = seen.get(incident_id) if incident_id is not None else None
            if incident is None and incident_id is not None and group is not None:
                incident = IncidentBrief(
                    incident_id,
                    group,
                    IncidentState(state),
                    time(resolved) if resolved is not None else None,
                    latest == incident_id,
                )
                seen[incident_id] = incident
            briefs[fp] = AlertBrief(
                fp, status, time(starts), time(last), incident_id, held, part, offset, incident
            )
    return briefs
