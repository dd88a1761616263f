"""Retention: what the store forgets about incidents resolved long ago.

Alert labels and annotations can carry personal data (a user's e-mail in a label, a customer in
a description), and so can what was derived from them: the incident's events, delivery logs,
escalation records, the built-in status page's copy. :func:`purge` deletes, for every incident
resolved before ``cutoff``:

- its alerts (and resolved alerts that joined no incident, last seen before ``cutoff``),
- its events except the response events ``sevflow report`` reads (acknowledged, resolved,
  reopened), and only those already published (the outbox is never cut short),
- its sinks' delivery log and status-page copy, its escalation state and log, its commands.

With ``incidents=True`` the incident rows, their remaining events and their group links go too,
and the report no longer counts them. Dead letters and quarantined records live in Kafka topics,
not here: the topics' own retention (``SEVFLOW_TOPIC_RETENTION_MS``) removes them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Select, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import EventType, IncidentState
from store.escalation_schema import escalation_log, escalations
from store.schema import alerts, commands, incident_events, incident_groups, incidents
from store.sinks_schema import sink_deliveries, status_page_incidents

__all__ = ["REPORT_EVENT_TYPES", "PurgeCounts", "purge"]

#: The events ``sevflow report`` reads (analytics.incident_times.RESPONSE_TYPES): kept with the incident.
REPORT_EVENT_TYPES = (EventType.ACKNOWLEDGED, EventType.RESOLVED, EventType.REOPENED)


@dataclass(frozen=True)
class PurgeCounts:
    """Rows per table that were (or, in a dry run, would be) deleted."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _statements(cutoff: datetime, incidents_too: bool) -> list[tuple[str, Delete]]:
    expired = select(incidents.c.id).where(
        incidents.c.state == IncidentState.RESOLVED.value,
        incidents.c.resolved_at.is_not(None),
        incidents.c.resolved_at < cutoff,
    )
    events = incident_events.c.incident_id.in_(expired) & incident_events.c.published_at.is_not(None)
    if not incidents_too:
        events &= incident_events.c.type.not_in([t.value for t in REPORT_EVENT_TYPES])
    orphans = and_(
        alerts.c.incident_id.is_(None),
        alerts.c.status == "resolved",
        alerts.c.last_received_at < cutoff,
    )
    statements = [
        ("alerts", delete(alerts).where(alerts.c.incident_id.in_(expired) | orphans)),
        ("incident_events", delete(incident_events).where(events)),
        ("sink_deliveries", delete(sink_deliveries).where(sink_deliveries.c.incident_id.in_(expired))),
        (
            "status_page_incidents",
            delete(status_page_incidents).where(status_page_incidents.c.incident_id.in_(expired)),
        ),
        ("escalation_log", delete(escalation_log).where(escalation_log.c.incident_id.in_(expired))),
        ("escalations", delete(escalations).where(escalations.c.incident_id.in_(expired))),
        ("commands", delete(commands).where(commands.c.incident_id.in_(expired))),
    ]
    if incidents_too:
        statements += [
            (
                "incident_groups",
                delete(incident_groups).where(incident_groups.c.incident_id.in_(expired)),
            ),
            # Last: the others select the expired incidents through this table.
            ("incidents", delete(incidents).where(incidents.c.id.in_(expired))),
        ]
    return statements


def _count(statement: Delete) -> Select[Any]:
    table = statement.table
    return select(func.count()).select_from(table).where(statement.whereclause)  # type: ignore[arg-type]


async def purge(
    engine: AsyncEngine, cutoff: datetime, *, incidents_too: bool = False, dry_run: bool = True
) -> PurgeCounts:
    """Delete (or with ``dry_run`` only count) what is past retention, in one transaction."""
    rows: dict[str, int] = {}
    async with engine.begin() as conn:
        for name, statement in _statements(cutoff, incidents_too):
            if dry_run:
                rows[name] = int((await conn.execute(_count(statement))).scalar_one())
            else:
                rows[name] = int((await conn.execute(statement)).rowcount or 0)
    return PurgeCounts(rows)
