"""What a repeat is decided on: the few fields of a stored alert and of an incident that
:func:`models.incident.unchanged` reads, as protocols, and brief stored forms of them.

Alertmanager re-sends every firing group each ``group_interval``, so most records the worker
sees change nothing. Deciding that needs an alert's status, start, last position and incident,
and whether that incident would still take it back (its state and resolution time): not its
labels, annotations or the incident's document. The same functions decide on a full
:class:`~models.incident.state.AlertState` and :class:`~models.incident.state.Incident` or on an
:class:`AlertBrief` and :class:`IncidentBrief` read from their columns (store/alert_briefs.py).
"""

from datetime import datetime
from typing import NamedTuple, Protocol

from models.events import IncidentState

__all__ = ["AlertBrief", "IncidentBrief", "StoredAlert", "TakingBack"]


class StoredAlert(Protocol):
    """The stored state of an alert, as far as a repeat is decided on it."""

    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def last_received_at(self) -> datetime: ...
    @property
    def incident_id(self) -> str | None: ...
    @property
    def suppressed_by(self) -> str | None: ...
    @property
    def kafka_partition(self) -> int | None: ...
    @property
    def kafka_offset(self) -> int | None: ...


class TakingBack(Protocol):
    """An incident, as far as whether it takes a firing alert back is decided on it."""

    @property
    def id(self) -> str: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def resolved_at(self) -> datetime | None: ...


class IncidentBrief(NamedTuple):
    """The columns of a stored incident a repeat is decided on, and whether it is its group's
    latest (the one the group's alerts join)."""

    id: str
    group_key: str
    state: IncidentState
    resolved_at: datetime | None
    latest: bool

    @property
    def is_open(self) -> bool:
        return self.state is not IncidentState.RESOLVED


class AlertBrief(NamedTuple):
    """The columns of a stored alert a repeat is decided on, with the incident it counts in."""

    fingerprint: str
    status: str
    starts_at: datetime
    last_received_at: datetime
    incident_id: str | None
    suppressed_by: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    incident: IncidentBrief | None
