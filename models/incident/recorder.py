"""The outcome of a transition and the recorder that numbers its events."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from models.events import EVENT_SCHEMA_VERSION, Actor, EventType, IncidentEvent, event_id
from models.incident.state import AlertState, Incident
from models.severity import Severity
from models.trusted import revised, trusted

__all__ = ["ALERTMANAGER", "SEVFLOW", "Outcome", "Recorder", "annotate"]

ALERTMANAGER = Actor(via="alertmanager")
SEVFLOW = Actor(via="sevflow")


@dataclass
class Outcome:
    """The result of one step: the new incident and alert state, and what changed."""

    incident: Incident | None
    alert: AlertState | None = None
    events: list[IncidentEvent] = field(default_factory=list)


class Recorder:
    """Accumulates events, numbering them after the incident's last sequence."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.events: list[IncidentEvent] = []

    def emit(
        self,
        incident: Incident,
        type_: EventType,
        actor: Actor,
        *,
        alert: AlertState | None = None,
        previous_severity: Severity | None = None,
        reason: str | None = None,
        data: dict[str, str] | None = None,
        update: Mapping[str, object] | None = None,
    ) -> Incident:
        """The incident with ``update`` applied and its sequence advanced, and its event.

        The event is built without validation (:func:`models.trusted.trusted`): every value is
        a field of a validated model or one of the typed arguments, and validating them again
        was a third of a transition's cost. tests/unit/test_event_construction.py holds every
        kind of event to what validation would build."""
        sequence = incident.sequence + 1
        incident = revised(incident, {**(update or {}), "sequence": sequence})
        self.events.append(
            trusted(
                IncidentEvent,
                {
                    "schema_version": EVENT_SCHEMA_VERSION,
                    "event_id": event_id(incident.id, sequence),
                    "type": type_,
                    "incident_id": incident.id,
                    "sequence": sequence,
                    "occurred_at": self.now,
                    "actor": actor,
                    "incident": incident.snapshot(),
                    "alert": alert.snapshot() if alert else None,
                    "previous_severity": previous_severity,
                    "reason": reason,
                    "data": data or {},
                },
            )
        )
        return incident


def annotate(
    incident: Incident,
    type_: EventType,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    data: dict[str, str] | None = None,
) -> Outcome:
    """Record something that happened to an incident without changing its state (an escalation
    step fired, an SLA target was missed): one event, numbered after the incident's last one."""
    rec = Recorder(now)
    incident = rec.emit(incident, type_, actor, reason=reason, data=data)
    return Outcome(incident, None, rec.events)
