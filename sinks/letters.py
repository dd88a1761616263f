"""The dead letters a sink's worker writes: an event it could not deliver, a record no version
reads (poison), and the events of a lane that failed in a way no sink expected."""

import logging
import traceback
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from models.events import IncidentEvent
from sinks.base import Failure
from sinks.dlq import DeadLetter, SourcePosition
from sinks.errors import DeliveryError
from sinks.records import Decoded

__all__ = ["letter", "poison_letter", "unexpected"]

log = logging.getLogger("sinks.worker")


def letter(
    sink: str,
    record: Any,
    reason: str,
    retryable: bool,
    event: IncidentEvent | None,
    raw: str | None,
    now: datetime,
) -> DeadLetter:
    """The dead letter of ``record`` (and its event, when it has one) for ``sink``."""
    return DeadLetter(
        sink=sink,
        reason=reason,
        retryable=retryable,
        failed_at=now,
        source=SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset),
        incident_id=event.incident_id if event else None,
        event_id=str(event.event_id) if event else None,
        event=event,
        raw=raw,
    )


def poison_letter(sink: str, record: Any, decoded: Decoded, poison: str, now: datetime) -> DeadLetter:
    """The dead letter of a record no version reads, with its first 4 KiB and what it names."""
    log.error(
        "%s: dead-lettering the record at %s/%d@%d: %s",
        sink,
        record.topic,
        record.partition,
        record.offset,
        poison,
    )
    raw = (record.value or b"")[:4096].decode(errors="replace")
    written = letter(sink, record, poison, False, None, raw, now)
    if decoded.incident_id is not None or decoded.event_id is not None:
        written = written.model_copy(
            update={"incident_id": decoded.incident_id, "event_id": decoded.event_id}
        )
    return written


def unexpected(sink: str, what: str, events: Sequence[IncidentEvent], exc: Exception) -> list[Failure]:
    """The failures of the events of a lane that failed in a way no sink expected (a bug met by
    one event, a value the store refuses): before, the error ended the sink's worker and the
    sinks process, which met the same event again at every start, and no sink of the process
    delivered anything meanwhile. Logged with the traceback's frames but not the message (which
    can quote a vendor's answer or a credential); retryable, so ``sevflow dlq replay`` sends
    them once the cause is fixed. A deploy broken for every event still stops the sink, after
    ``max_consecutive_dead`` letters in a row (:class:`sinks.worker.SinkWorker`)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "%s: unexpected %s handling %s; dead-lettering its %d event(s)\n%s",
        sink,
        type(exc).__name__,
        what,
        len(events),
        frames.rstrip(),
    )
    error = DeliveryError(True, f"{sink}: unexpected error ({type(exc).__name__})")
    return [Failure(event, error) for event in events]
