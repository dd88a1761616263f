"""An incident event's document always fits a Kafka record of incident-events (models/event_size.py),
and an ordinary one is stored as it is."""

import pytest

from models.event_size import EVENT_MAX_BYTES, event_document
from models.events import IncidentEvent
from models.fitting import TRUNCATED
from testkit.fakes.events import IncidentStory


def test_an_ordinary_event_is_its_own_document() -> None:
    (opened, *_) = IncidentStory().fire()
    assert event_document(opened) == opened.model_dump_json()


@pytest.mark.parametrize(
    "story",
    [
        IncidentStory(
            labels={"big": "x" * 450_000},
            annotations={"description": "d" * 300_000},
            impact="i" * 200_000,
            summary="s" * 10_000,
        ),
        IncidentStory(labels={f"l{n:03d}": "\u263a" * 400 for n in range(900)}),
        IncidentStory(
            labels={f"l{n:03d}{'k' * 600}": "v" * 300 for n in range(999)},
            annotations={f"a{n:03d}": "w" * 500 for n in range(999)},
        ),
    ],
    ids=["long texts", "multi-byte texts", "many long names"],
)
def test_an_event_of_a_huge_alert_is_shrunk_to_fit_keeping_what_it_is(story: IncidentStory) -> None:
    (opened, *_) = story.fire()
    assert len(opened.model_dump_json().encode()) > 2 * EVENT_MAX_BYTES * 0.9
    document = event_document(opened)
    assert len(document.encode()) <= EVENT_MAX_BYTES
    shrunk = IncidentEvent.model_validate_json(document)
    same = ("event_id", "type", "incident_id", "sequence", "occurred_at", "actor")
    assert {f: getattr(shrunk, f) for f in same} == {f: getattr(opened, f) for f in same}
    assert shrunk.incident.id == opened.incident.id
    assert shrunk.incident.severity == opened.incident.severity
    assert shrunk.alert is not None
    assert opened.alert is not None
    assert shrunk.alert.fingerprint == opened.alert.fingerprint
    texts = [*shrunk.alert.labels.values(), *shrunk.alert.annotations.values()]
    cut = [t for t in texts if t.endswith(TRUNCATED) or "more left out" in t]
    assert cut
    assert len(document.encode()) > EVENT_MAX_BYTES * 0.9  # cut no more than needed
