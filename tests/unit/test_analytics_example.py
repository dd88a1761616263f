"""The example consumer reads the documented schema and agrees with sevflow's own analytics; the
topic decoder skips unknown types and broken records instead of failing."""

import importlib.util
import json
import sys
from datetime import timedelta
from types import ModuleType

import pytest

from analytics.incident_times import times_from_events
from analytics.topic import decode_event
from models.events import EVENT_SCHEMA_VERSION, EventType, IncidentEvent
from models.severity import Severity
from testkit.fakes.events import T0, IncidentStory
from testkit.local import REPO
from tests.unit.test_analytics_scenario import build_scenario


def example() -> ModuleType:
    path = REPO / "examples" / "analytics_consumer.py"
    spec = importlib.util.spec_from_file_location("analytics_consumer_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


def as_records(events: list[IncidentEvent]) -> list[dict[str, object]]:
    """Exactly what is on the wire: the JSON the relay publishes, decoded by a foreign consumer."""
    return [json.loads(e.to_bytes()) for e in events]


async def test_example_consumer_agrees_with_sevflow_analytics(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    tracker = example().ResponseTracker()
    records = as_records(scenario.events)
    for record in records + records[:3]:  # repeats are absorbed
        tracker.apply(record)
    tracker.apply({**records[0], "type": "postmortem_written", "event_id": "x"})
    tracker.apply({**records[0], "schema_version": 2, "event_id": "y"})
    assert tracker.ignored == 2
    ours = {t.incident_id: t for t in times_from_events(scenario.events)}
    assert set(tracker.incidents) == set(ours)
    for incident_id, view in tracker.incidents.items():
        assert view.severity == ours[incident_id].severity.value
        assert view.first_acknowledged_at == ours[incident_id].first_acknowledged_at
        assert view.resolved_at == ours[incident_id].resolved_at
    summary = tracker.summary()
    assert summary["SEV3"]["incidents"] == 2
    assert summary["SEV3"]["ttr_median_s"] == 23 * 60
    assert summary["SEV1"]["tta_mean_s"] == 20 * 60


def test_example_times_an_acknowledgement_from_the_reopening_it_answered() -> None:
    """Opened, resolved at 10 min, reopened at 30, acknowledged at 50: 20 minutes to acknowledge,
    as sevflow's report says, not 50."""
    story = IncidentStory(severity=Severity.SEV2)
    events = [
        *story.fire(at=T0),
        *story.resolve(at=T0 + timedelta(minutes=10)),
        *story.fire("fp2", at=T0 + timedelta(minutes=30), instance="api-2"),
        *story.ack(at=T0 + timedelta(minutes=50)),
    ]
    assert EventType.REOPENED in {e.type for e in events}
    tracker = example().ResponseTracker()
    for record in as_records(events):
        tracker.apply(record)
    (view,) = tracker.incidents.values()
    (ours,) = times_from_events(events)
    assert view.time_to_acknowledge == ours.time_to_acknowledge == timedelta(minutes=20)
    assert tracker.summary()["SEV2"]["tta_mean_s"] == 20 * 60


async def test_decode_event_skips_what_consumers_must_skip(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    raw = scenario.events[0].to_bytes()
    assert decode_event(raw) == scenario.events[0]
    unknown = json.dumps({**json.loads(raw), "type": "postmortem_written"}).encode()
    assert decode_event(unknown) == "unknown type"
    assert decode_event(b"{not json") == "invalid record"
    assert decode_event(b"[" * 100_000) == "invalid record"
    assert decode_event(b"[]") == "invalid record"
    assert decode_event(None) == "invalid record"
    broken = json.dumps({**json.loads(raw), "sequence": 0}).encode()
    assert decode_event(broken) == "invalid record"
    extra = json.dumps({**json.loads(raw), "added_later": {"x": 1}}).encode()
    assert decode_event(extra) == scenario.events[0]  # fields are only ever added


async def test_decode_event_skips_a_newer_schema_version(engine) -> None:  # type: ignore[no-untyped-def]
    """A record of a newer ``schema_version`` was decoded as if it were the current schema; the
    documented rule (and the example consumer) skips it."""
    scenario = await build_scenario(engine)
    document = json.loads(scenario.events[0].to_bytes())
    newer = json.dumps({**document, "schema_version": EVENT_SCHEMA_VERSION + 1}).encode()
    assert decode_event(newer) == "newer schema"
    newer_unknown = json.dumps({**document, "schema_version": 99, "type": "x"}).encode()
    assert decode_event(newer_unknown) == "newer schema"
    current = json.dumps({**document, "schema_version": EVENT_SCHEMA_VERSION}).encode()
    assert decode_event(current) == scenario.events[0]


def test_example_leaves_canaries_out_and_never_counts_a_time_below_zero() -> None:
    """As ``sevflow report``: a canary pages nobody and is no response to count, and a clock
    behind the opening's is no negative wait."""
    canary = IncidentStory(name="Canary", severity=Severity.SEV1)
    skewed = IncidentStory(name="Skewed", severity=Severity.SEV2)
    normal = IncidentStory(name="Normal", severity=Severity.SEV2)
    events = [
        *canary.fire(at=T0),
        *canary.ack(at=T0 + timedelta(hours=3)),
        *skewed.fire(at=T0),
        *skewed.ack(at=T0 - timedelta(minutes=2)),
        *skewed.resolve(at=T0 - timedelta(minutes=1)),
        *normal.fire(at=T0),
        *normal.ack(at=T0 + timedelta(minutes=10)),
        *normal.resolve(at=T0 + timedelta(minutes=30)),
    ]
    records = as_records(events)
    for record in records:
        if record["incident_id"] == events[0].incident_id:
            record["incident"]["canary"] = True  # type: ignore[index]
    tracker = example().ResponseTracker()
    for record in records:
        tracker.apply(record)
    summary = tracker.summary()
    assert "SEV1" not in summary
    assert summary["SEV2"]["tta_mean_s"] == 5 * 60  # (0 + 10 min) / 2
    assert summary["SEV2"]["ttr_mean_s"] == 15 * 60  # (0 + 30 min) / 2


@pytest.mark.parametrize(
    "record",
    [
        [],
        None,
        1,
        "x",
        {"schema_version": None},
        {"schema_version": "2"},
        {"type": ["opened"]},
        {"event_id": None},
        {"incident": []},
        {"sequence": "3"},
        {"incident": {"opened_at": 1767225600}},
        {"incident": {"opened_at": "yesterday"}},
        {"incident": {"opened_at": "2026-01-15T14:30:00"}},
        {"occurred_at": "2026-01-15T14:30:00"},
        {"incident": {"acknowledged_at": "2026-01-15T14:30:00"}},
    ],
    ids=repr,
)
def test_example_skips_a_record_it_cannot_read_instead_of_stopping(record: object) -> None:
    """Each raised in the example, and its consumer met the same record again at every start."""
    (opened,) = as_records(IncidentStory().fire(at=T0))
    if isinstance(record, dict):
        snapshot = record.pop("incident", None)
        record = {**opened, **record}
        if isinstance(snapshot, dict):
            record["incident"] = {**opened["incident"], **snapshot}  # type: ignore[dict-item]
        elif snapshot is not None:
            record["incident"] = snapshot
    tracker = example().ResponseTracker()
    assert tracker.apply(record) is False
    assert tracker.ignored == 1
    assert tracker.incidents == {}
    tracker.summary()
