"""What a record makes of an alert: its incident id, its stored state, whether it is stale."""

import hashlib
import re
import unicodedata
from datetime import timedelta

from models.alert import AlertRecord, RecordPosition
from models.incident.briefs import StoredAlert
from models.incident.state import AlertState, Classification
from models.trusted import trusted

__all__ = [
    "NAMES_KEPT",
    "RESOLUTION_SKEW",
    "alert_state",
    "first_name",
    "new_incident_id",
    "slugify",
    "superseded",
    "with_name",
]

#: Distinct names kept per incident; enough to decide blast radius without unbounded growth.
NAMES_KEPT = 50


def new_incident_id(record: AlertRecord) -> str:
    """A deterministic id for the incident a record opens: replaying the record gives the same id."""
    seed = f"{record.group_key}\x00{record.fingerprint}\x00{record.received_at.isoformat()}"
    return "inc_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


#: Latin letters Unicode does not decompose into a letter and an accent, as they are written
#: without it (``Größe`` → ``grosse``, ``Øresund`` → ``oresund``): dropped, they split words.
_UNDECOMPOSED = str.maketrans(
    {
        "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "Oe",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
        "\u0131": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
    }
)  # fmt: skip


def slugify(text: str, limit: int = 40) -> str:
    """``HighErrorRate`` → ``high-error-rate``: lower case, digits and hyphens only; accented
    letters lose their accents (``Ünïcödé`` → ``unicode``, where dropping them gave ``n-c-d``),
    and the letters without a decomposition are written as without one (``Größe`` → ``grosse``)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _CAMEL.sub("-", plain)
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")
    return slug[:limit].rstrip("-") or "alert"


def first_name(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    """The value of the first of ``names`` that ``labels`` give with something visible: a label of
    blanks names no service or host (it would count in the blast radius and show as "Services:  "),
    so the next label is asked."""
    for name in names:
        value = labels.get(name)
        if value and not value.isspace():
            return value
    return None


def with_name(names: tuple[str, ...], name: str | None) -> tuple[str, ...]:
    if name is None or name in names or len(names) >= NAMES_KEPT:
        return names
    return (*names, name)


def alert_state(
    record: AlertRecord,
    cls: Classification,
    incident_id: str | None,
    previous: AlertState | None,
    position: RecordPosition | None = None,
) -> AlertState:
    """The stored state of the alert ``record`` describes, in incident ``incident_id``.

    ``position`` is the record's place on the alerts topic; without one the stored position is
    kept (a record that was not read from Kafka, such as a maintenance window's release)."""
    kept = position or (previous.position if previous is not None else None)
    # Built without validating again (models/trusted.py): each value is a validated record's or
    # classification's field; tests/unit/test_event_construction.py holds it to validation.
    return trusted(
        AlertState,
        {
            "fingerprint": record.fingerprint,
            "incident_id": incident_id,
            "status": record.status,
            "severity": cls.severity,
            "rule": cls.rule,
            "labels": record.labels,
            "annotations": record.annotations,
            "starts_at": record.starts_at,
            "ends_at": record.ends_at,
            "generator_url": record.generator_url,
            "receiver": record.receiver,
            "group_key": record.group_key,
            "external_url": record.external_url,
            "first_received_at": previous.first_received_at if previous else record.received_at,
            "last_received_at": record.received_at,
            "suppressed_by": None,
            "kafka_partition": kept.partition if kept is not None else None,
            "kafka_offset": kept.offset if kept is not None else None,
        },
    )


#: How far before the alert's current start a resolution may end and still be its own: a
#: resolution made by hand (``amtool alert add --end=…`` takes whole seconds; Alertmanager then
#: starts the posted alert at its end) ends up to a second or so before the start it resolves.
RESOLUTION_SKEW = timedelta(seconds=60)


def superseded(
    record: AlertRecord, previous: StoredAlert | None, position: RecordPosition | None = None
) -> bool:
    """True when ``record`` is older than the stored state of its alert, or a resolution that
    ended well before (:data:`RESOLUTION_SKEW`) the alert's current firing started.

    Older is decided by the Kafka offset when ``position`` and the stored position are both known
    and on one partition: ``received_at`` is stamped by whichever receiver replica took the
    record, and a replica whose clock runs ahead would make the later records of the others look
    old. (The same offset is the same record, replayed: not older; applying it again changes
    nothing.) Otherwise (a state stored before positions were kept, a record not read from Kafka)
    it falls back to ``received_at``.

    The second rule catches a late copy of an earlier episode's resolution (the other Alertmanager
    of an HA pair, a notification retried through another receiver replica): it comes later on the
    topic, and applied it would resolve an alert that is firing. A firing record is not judged by
    its times: Alertmanager re-fires an alert it resolved on ``resolve_timeout`` with the same
    ``startsAt``. (A copy of a resolution less than the skew before the re-fire is applied: the
    alert shows resolved until its next notification.) A resolution whose end comes before its own
    start (no Alertmanager sends one; its API refuses such an alert) is read as ending at its
    start: it resolves the episode it names instead of being lost as an earlier one's.
    """
    if previous is None:
        return False
    stored = previous.kafka_offset  # (read without building the stored RecordPosition)
    if position is not None and stored is not None and position.partition == previous.kafka_partition:
        if position.offset < stored:
            return True
    elif record.received_at < previous.last_received_at:
        return True
    return (
        record.status == "resolved"
        and previous.status == "firing"
        and record.ends_at is not None
        # (a difference, never a time moved: a stored start near the edges of what a datetime
        # holds stays comparable)
        and previous.starts_at - max(record.ends_at, record.starts_at) > RESOLUTION_SKEW
    )
