"""A dead letter always fits a Kafka record (sinks/dlq.py ``carried``)."""

from sinks.dlq import DEAD_LETTER_MAX_BYTES, DeadLetter, SourcePosition, carried
from testkit.fakes.events import IncidentStory


def _letter(annotations: dict[str, str]) -> DeadLetter:
    event = IncidentStory(annotations=annotations).fire()[0]
    return DeadLetter(
        sink="pagerduty",
        reason="permanent: PagerDuty answered 400",
        retryable=False,
        failed_at=event.occurred_at,
        source=SourcePosition(topic="sevflow-incident-events", partition=3, offset=41),
        incident_id=event.incident_id,
        event_id=str(event.event_id),
        event=event,
    )


def test_an_ordinary_letter_carries_its_event() -> None:
    letter = _letter({})
    assert carried(letter) == letter.to_bytes()


def test_a_letter_too_large_to_write_carries_where_its_event_is_instead() -> None:
    """An event of a megabyte written to incident-events by another producer: its letter was
    refused as too large at every attempt, and the sinks role stopped at it again and again."""
    letter = _letter({"description": "d" * 1_000_000})
    assert len(letter.to_bytes()) > 1_000_000
    value = carried(letter)
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    kept = DeadLetter.model_validate_json(value)
    assert kept.event is None
    assert (kept.incident_id, kept.event_id) == (letter.incident_id, letter.event_id)
    assert kept.reason.startswith("permanent: PagerDuty answered 400 (the event is not kept here")
    assert kept.reason.endswith("it is at sevflow-incident-events[3]@41)")
