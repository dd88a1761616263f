"""Incident queries for operators: filtered, paginated lists and one incident in full.

Shared by ``sevflow incidents list|show`` and the Incident API so both answer the same question the
same way. Lists are newest first (``opened_at`` descending, then id) and paginate with a keyset
cursor — an opaque token naming the last incident of a page — so a page never repeats or skips an
incident when new ones open meanwhile (an offset would shift under inserts).

State, severity and the opening window are filtered in SQL. Services live inside the incident
document, so the service filter is applied on the rows SQL returns, reading further chunks until
the page is full.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import AlertSnapshot, IncidentEvent, IncidentState
from models.incident import Incident
from models.severity import Severity
from store.incident_reads import incident_reads
from store.incidents import IncidentStore

__all__ = [
    "MAX_PAGE_SIZE",
    "CursorError",
    "IncidentDetail",
    "IncidentFilter",
    "IncidentPage",
    "alerts_of",
    "decode_cursor",
    "encode_cursor",
    "find_incidents",
    "load_incident",
]

MAX_PAGE_SIZE = 500
_CHUNK = 200


class CursorError(ValueError):
    """A pagination cursor that this module did not issue."""


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents to list; every criterion left None matches everything.

    ``since``/``until`` bound the opening time: ``since <= opened_at < until``.
    """

    state: IncidentState | None = None
    severity: Severity | None = None
    service: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, incident: Incident) -> bool:
        """The criteria SQL cannot apply (services are inside the document)."""
        return self.service is None or self.service in incident.services


@dataclass(frozen=True)
class IncidentPage:
    """One page of incidents and the cursor of the next page (None on the last page)."""

    incidents: Sequence[Incident]
    next_cursor: str | None


@dataclass(frozen=True)
class IncidentDetail:
    """An incident with its timeline and the alerts it has seen."""

    incident: Incident
    timeline: Sequence[IncidentEvent]
    alerts: Sequence[AlertSnapshot]


def encode_cursor(incident: Incident) -> str:
    """The cursor that continues after ``incident``."""
    raw = f"{incident.opened_at.astimezone(UTC).isoformat()}|{incident.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(opened_at, id)`` of the last incident of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        opened, _, incident_id = raw.partition("|")
        opened_at = datetime.fromisoformat(opened)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("invalid cursor") from None
    if not incident_id or opened_at.tzinfo is None:
        raise CursorError("invalid cursor")
    return opened_at, incident_id


async def find_incidents(
    engine: AsyncEngine,
    criteria: IncidentFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> IncidentPage:
    """A page of at most ``limit`` incidents matching ``criteria``, newest first."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    after = decode_cursor(cursor) if cursor is not None else None
    found: list[Incident] = []
    more = False
    async with incident_reads(engine) as reads:
        while True:
            documents = await reads.newest(
                limit=_CHUNK,
                state=criteria.state.value if criteria.state is not None else None,
                severity=criteria.severity.value if criteria.severity is not None else None,
                team=criteria.team,
                since=criteria.since,
                until=criteria.until,
                after=after,
            )
            for document in documents:
                incident = Incident.model_validate_json(document)
                after = (incident.opened_at, incident.id)
                if not criteria.matches(incident):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append(incident)
            if more or len(documents) < _CHUNK:
                break
    return IncidentPage(found, encode_cursor(found[-1]) if more and found else None)


def alerts_of(timeline: Sequence[IncidentEvent]) -> list[AlertSnapshot]:
    """Every alert the incident has seen, in the state of its latest event, in order of arrival.

    Taken from the timeline rather than the alerts table: an alert that later joined another
    incident of its group still shows here as it was in this one.
    """
    latest: dict[str, AlertSnapshot] = {}
    for event in sorted(timeline, key=lambda e: e.sequence):
        if event.alert is not None:
            latest[event.alert.fingerprint] = event.alert
    return list(latest.values())


async def load_incident(engine: AsyncEngine, incident_id: str) -> IncidentDetail | None:
    """The incident with its timeline and alerts; None when there is no such incident."""
    store = IncidentStore(engine)
    incident = await store.get(incident_id)
    if incident is None:
        return None
    timeline = await store.timeline(incident_id)
    return IncidentDetail(incident, timeline, alerts_of(timeline))
