"""How incidents, alerts and events become rows of the incident store, and are read back."""

from typing import Any

from models.event_size import event_document
from models.events import IncidentEvent
from models.incident import AlertState, Incident
from models.severity import Severity
from models.trusted import trusted
from store.driver_sql import Values

__all__ = [
    "ALERT_FIELDS",
    "EVENT_COLUMNS",
    "INCIDENT_COLUMNS",
    "ParsedIncidents",
    "alert_from_row",
    "alert_row",
    "event_row",
    "incident_row",
]


# The rows are given to the driver as they are (store.driver_sql.py): times and JSON in the
# form of ``values``, the dialect's.


def incident_row(incident: Incident, values: Values) -> dict[str, Any]:
    time = values.time
    return {
        "id": incident.id,
        "group_key": incident.group_key,
        "state": incident.state.value,
        "severity": incident.severity.value,
        "title": incident.title,
        "opened_at": time(incident.opened_at),
        "acknowledged_at": time(incident.acknowledged_at),
        "resolved_at": time(incident.resolved_at),
        "quiet_since": time(incident.quiet_since),
        "sequence": incident.sequence,
        "team": incident.team,
        "document": incident.model_dump_json(),
    }


#: The columns of ``incidents`` that :func:`incident_row` writes.
INCIDENT_COLUMNS = (
    "id",
    "group_key",
    "state",
    "severity",
    "title",
    "opened_at",
    "acknowledged_at",
    "resolved_at",
    "quiet_since",
    "sequence",
    "team",
    "document",
)

#: The alerts table's columns, each a field of AlertState of the same name.
ALERT_FIELDS = tuple(AlertState.model_fields)


def alert_row(alert: AlertState, values: Values) -> dict[str, Any]:
    row = {name: getattr(alert, name) for name in ALERT_FIELDS}
    time, json = values.time, values.json
    row["severity"] = alert.severity.value
    row["labels"], row["annotations"] = json(alert.labels), json(alert.annotations)
    row["starts_at"], row["ends_at"] = time(alert.starts_at), time(alert.ends_at)
    row["first_received_at"] = time(alert.first_received_at)
    row["last_received_at"] = time(alert.last_received_at)
    return row


#: The columns of ``incident_events`` that :func:`event_row` writes (``position`` is generated).
EVENT_COLUMNS = (
    "event_id",
    "incident_id",
    "sequence",
    "type",
    "occurred_at",
    "document",
    "published_at",
)


def event_row(event: IncidentEvent, values: Values) -> dict[str, Any]:
    return {
        "event_id": str(event.event_id),
        "incident_id": event.incident_id,
        "sequence": event.sequence,
        "type": event.type.value,
        "occurred_at": values.time(event.occurred_at),
        "document": event_document(event),  # (shrunk to fit a Kafka record when it would not)
        "published_at": None,
    }


def alert_from_row(row: Any) -> AlertState:
    """The stored state of an alert from its row (every column of ``alerts``).

    Not validated again: the row holds what :func:`alert_row` wrote from a validated
    ``AlertState``, read back through the columns' types (JSON objects, aware UTC times), and
    the two columns older rows may leave empty get their defaults here. Reading a batch's
    alerts is the whole cost of a re-sent one."""
    values = {name: row[name] for name in ALERT_FIELDS}
    values["severity"] = Severity(row["severity"] or "SEV3")
    values["rule"] = row["rule"] or "default"
    return trusted(AlertState, values)


class ParsedIncidents:
    """Incidents parsed from their stored documents, by id, with the document they came from.

    A batch of the worker reads every incident its alerts touch; most of them it wrote itself
    in the previous batch. An incident whose stored document is, character for character, the
    one parsed (or written) before is that same frozen ``Incident``: it is taken from here
    instead of being parsed again. A document changed by anyone else differs, and is parsed.
    At most ``size`` incidents are kept, the least recently used leaving first: four batches'
    worth of distinct groups, about ten megabytes (an incident keeps up to 50 instance names)."""

    def __init__(self, size: int = 2_000) -> None:
        self._size = size
        self._by_id: dict[str, tuple[str, Incident]] = {}

    def parse(self, document: str) -> Incident:
        incident = Incident.model_validate_json(document)
        self.remember(incident, document)
        return incident

    def get(self, incident_id: str, document: str) -> Incident:
        """The incident ``document`` holds (``incident_id``'s, as stored)."""
        known = self._by_id.pop(incident_id, None)
        if known is not None and known[0] == document:
            self._by_id[incident_id] = known
            return known[1]
        return self.parse(document)

    def remember(self, incident: Incident, document: str) -> None:
        self._by_id.pop(incident.id, None)
        self._by_id[incident.id] = (document, incident)
        if len(self._by_id) > self._size:
            del self._by_id[next(iter(self._by_id))]
