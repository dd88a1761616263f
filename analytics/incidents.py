"""Incident queries for operators: filtered, paginated lists and one incident in full.

Shared by ``sevflow incidents list|show`` and the Incident API so both answer the same question the
same way. Lists are newest first (``opened_at`` descending, then id) and paginate with a keyset
cursor — an opaque token naming the last incident of a page — so a page never repeats or skips an
incident when new ones open meanwhile (an offset would shift under inserts).

State, severity and the opening window are filtered in SQL. Services live inside the incident
document, so the service filter is applied on the rows SQL returns, reading further chunks until
the page is full.

Two ways to the store, one answer: :func:`find_incidents` / :func:`load_incident` on an async
engine (the Incident API), :func:`read_incidents` / :func:`read_incident` on
:class:`store.direct_reads.DirectReads` (the CLI, which need not import SQLAlchemy for them). Both
page with :class:`_Pager`. Light to import: the store modules are imported where they are used.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from models.events import AlertSnapshot, IncidentEvent, IncidentState
from models.incident import Incident
from models.severity import Severity

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from store.direct_reads import DirectReads

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
    "read_incident",
    "read_incidents",
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
    try:  # (0001-01-01T00:00:00+01:00 is in year 0 in UTC: the store's read raised, a 503)
        return opened_at.astimezone(UTC), incident_id
    except OverflowError:
        raise CursorError("invalid cursor") from None


class _Pager:
    """One page in the making: which rows to ask for next, and what the rows read so far give.
    The rows come newest first, :data:`_CHUNK` at a time, until the page is full or none remain."""

    def __init__(self, criteria: IncidentFilter, limit: int, cursor: str | None) -> None:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        self._criteria = criteria
        self._limit = limit
        self._after = decode_cursor(cursor) if cursor is not None else None
        self._found: list[Incident] = []
        self._more = False

    def query(self) -> dict[str, Any]:
        """The arguments of the next ``newest`` read."""
        c = self._criteria
        return {
            "limit": _CHUNK,
            "state": c.state.value if c.state is not None else None,
            "severity": c.severity.value if c.severity is not None else None,
            "team": c.team,
            "since": c.since,
            "until": c.until,
            "after": self._after,
        }

    def take(self, documents: Sequence[str]) -> bool:
        """Add the rows of a read; True when the page is complete."""
        for document in documents:
            incident = Incident.model_validate_json(document)
            self._after = (incident.opened_at, incident.id)
            if not self._criteria.matches(incident):
                continue
            if len(self._found) == self._limit:
                self._more = True
                return True
            self._found.append(incident)
        return len(documents) < _CHUNK

    def page(self) -> IncidentPage:
        found = self._found
        return IncidentPage(found, encode_cursor(found[-1]) if self._more and found else None)


async def find_incidents(
    engine: "AsyncEngine",
    criteria: IncidentFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> IncidentPage:
    """A page of at most ``limit`` incidents matching ``criteria``, newest first."""
    from store.incident_reads import incident_reads

    pager = _Pager(criteria, limit, cursor)
    async with incident_reads(engine) as reads:
        while not pager.take(await reads.newest(**pager.query())):
            pass
    return pager.page()


def read_incidents(
    reads: "DirectReads", criteria: IncidentFilter, *, limit: int = 50, cursor: str | None = None
) -> IncidentPage:
    """:func:`find_incidents` on a :class:`~store.direct_reads.DirectReads`."""
    pager = _Pager(criteria, limit, cursor)
    while not pager.take(reads.newest(**pager.query())):
        pass
    return pager.page()


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


async def load_incident(engine: "AsyncEngine", incident_id: str) -> IncidentDetail | None:
    """The incident with its timeline and alerts; None when there is no such incident."""
    from store.incidents import IncidentStore

    store = IncidentStore(engine)
    incident = await store.get(incident_id)
    if incident is None:
        return None
    timeline = await store.timeline(incident_id)
    return IncidentDetail(incident, timeline, alerts_of(timeline))


def read_incident(reads: "DirectReads", incident_id: str) -> IncidentDetail | None:
    """:func:`load_incident` on a :class:`~store.direct_reads.DirectReads`."""
    document = reads.incident(incident_id)
    if document is None:
        return None
    timeline = [IncidentEvent.model_validate_json(d) for d in reads.timeline(incident_id)]
    return IncidentDetail(Incident.model_validate_json(document), timeline, alerts_of(timeline))
