"""The previous release's records still work: the frozen v1 fixtures (tests/fixtures/compat/v1)
run through today's worker, sinks, analytics and migrations.

While an upgrade rolls, old and new processes share the topics and the store: a new worker reads
the alerts an old receiver wrote and the commands an old API wrote, new sinks read the events an
old relay published, and old processes still use the store a new worker migrated. The fixtures
are files, written once from the release's own code (generate.py), never by these tests.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from analytics.topic import decode_event
from models.events import EventType, IncidentState
from models.incident import LifecyclePolicy
from models.severity import Severity
from sinks.pagerduty_format import pagerduty_calls
from sinks.records import decode
from sinks.slack_format import update_line
from store.db import sync_engine
from store.incidents import IncidentStore
from store.migrate import upgrade
from streams.pipeline import Pipeline
from streams.records import decode_alert, decode_command
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.conftest import FIXTURES

V1 = FIXTURES / "compat" / "v1"


def lines(name: str, release: Path = V1) -> list[bytes]:
    return [line for line in (release / name).read_bytes().splitlines() if line]


def with_field(raw: bytes, **fields: Any) -> bytes:
    return json.dumps({**json.loads(raw), **fields}).encode()


# --- the worker: alert records and commands ------------------------------------------------------


async def test_worker_applies_previous_release_alerts_and_commands(engine) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    alerts = [decode_alert(raw) for raw in lines("alerts.jsonl")]
    assert [a.refused for a in alerts] == [None] * len(alerts)
    events = await pipeline.process_alerts([a.record for a in alerts if a.record is not None])
    assert [e.type for e in events].count(EventType.OPENED) == 2

    commands = [decode_command(raw) for raw in lines("commands.jsonl")]
    assert {c.record.actor.via for c in commands if c.record is not None} == {
        "api",
        "cli",
        "slack",
        "pagerduty",
    }
    results = [await pipeline.process_command(c.record) for c in commands if c.record is not None]
    assert [r.reason for r in results] == ["acknowledged", "acknowledged", "resolved", "resolved"]

    incidents = {i.title: i for i in await pipeline.store.list_incidents()}
    assert {i.state for i in incidents.values()} == {IncidentState.RESOLVED}
    errors = next(i for i in incidents.values() if i.group_key.startswith("{}:{alertname="))
    resolved = (await pipeline.store.timeline(errors.id))[-1]
    assert resolved.type is EventType.RESOLVED
    assert resolved.data["root_cause"] == "A bad deploy of the API"
    acked = [e for i in incidents.values() for e in await pipeline.store.timeline(i.id)]
    pagerduty = next(e for e in acked if e.actor.via == "pagerduty")
    assert pagerduty.data["pagerduty_alert"].endswith("/escalation/1")


def test_previous_release_commands_have_no_schema_version_and_read_as_version_1() -> None:
    for raw in lines("commands.jsonl"):
        assert "schema_version" not in json.loads(raw)
        decoded = decode_command(raw)
        assert decoded.record is not None
        assert decoded.record.schema_version == 1


@pytest.mark.parametrize(
    ("name", "decoder"), [("alerts.jsonl", decode_alert), ("commands.jsonl", decode_command)]
)
def test_worker_ignores_fields_a_later_release_adds(name: str, decoder: Any) -> None:
    for raw in lines(name):
        later = decoder(with_field(raw, added_later={"x": 1}, another="y"))
        assert later.refused is None
        assert later.record == decoder(raw).record


@pytest.mark.parametrize(
    ("name", "decoder", "what"),
    [("alerts.jsonl", decode_alert, "alert record"), ("commands.jsonl", decode_command, "command")],
)
def test_worker_refuses_a_newer_schema_version_naming_both(name: str, decoder: Any, what: str) -> None:
    newer = decoder(with_field(lines(name)[0], schema_version=2))
    assert newer.record is None
    assert newer.newer
    assert newer.refused == (
        f"newer {what} schema_version 2 (this worker reads 1): upgrade the workers before the "
        "processes that write it"
    )


def test_worker_refuses_poison_naming_the_field() -> None:
    broken = json.loads(lines("alerts.jsonl")[0])
    del broken["fingerprint"]
    decoded = decode_alert(json.dumps(broken).encode())
    assert (decoded.record, decoded.newer) == (None, False)
    assert decoded.refused == "invalid alert record: fingerprint: Field required"
    assert decode_command(b"[]").refused == "invalid command: not a JSON object"


# --- sinks and analytics: incident events --------------------------------------------------------


#: Event types added after the frozen release: its readers never saw one.
ADDED_SINCE = {
    EventType.STATUSPAGE_PUBLISHED.value,
    EventType.VERIFICATION_FAILED.value,
    EventType.VERIFICATION_PASSED.value,
    EventType.NOTE_ADDED.value,
}


def test_previous_release_events_cover_every_event_type() -> None:
    assert {json.loads(raw)["type"] for raw in lines("events.jsonl")} == {
        t.value for t in EventType
    } - ADDED_SINCE


def test_sinks_decode_and_format_every_previous_release_event() -> None:
    for raw in lines("events.jsonl"):
        decoded = decode(raw)
        assert decoded.poison is None, decoded.poison
        event = decoded.event
        assert event is not None
        assert event.to_bytes() == raw  # nothing lost or changed in the reading
        pagerduty_calls(event, paged=True, severities=frozenset(Severity))
        update_line(event)
        later = decode(with_field(raw, added_later=[1, 2]))
        assert later.event == event


def test_sinks_dead_letter_a_newer_event_schema_with_a_reason() -> None:
    raw = lines("events.jsonl")[0]
    decoded = decode(with_field(raw, schema_version=2))
    assert (decoded.event, decoded.newer) == (None, True)
    assert decoded.poison == (
        "newer event schema_version 2 (this sevflow reads 1): upgrade sevflow sinks"
    )
    assert decoded.incident_id == json.loads(raw)["incident_id"]


def test_analytics_reads_every_previous_release_event() -> None:
    for raw in lines("events.jsonl"):
        event = decode_event(raw)
        assert not isinstance(event, str), event
        assert decode_event(with_field(raw, added_later=True)) == event
    assert decode_event(with_field(lines("events.jsonl")[0], schema_version=2)) == "newer schema"


# --- the store: expand, then contract one release later ------------------------------------------


def test_migrations_keep_what_the_previous_release_reads_and_writes(database_url: str) -> None:
    """After ``upgrade head`` every table and column of the previous release is still there with
    a type it can read, and a column it does not know cannot make its INSERTs fail: new columns
    are nullable or have a server default. Dropping or renaming waits one release (README)."""
    previous: dict[str, dict[str, dict[str, Any]]] = json.loads((V1 / "store-columns.json").read_text())
    fresh_database(database_url, create=False)
    engine = sync_engine(database_url)
    try:
        upgrade(engine)
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert set(previous) <= tables, f"tables dropped: {sorted(set(previous) - tables)}"
        for table, old_columns in previous.items():
            columns = {c["name"]: c for c in inspector.get_columns(table)}
            dropped = set(old_columns) - set(columns)
            assert not dropped, f"{table}: columns dropped or renamed: {sorted(dropped)}"
            for name, old in old_columns.items():
                if old["nullable"]:
                    assert columns[name]["nullable"], f"{table}.{name} became NOT NULL"
            for name in set(columns) - set(old_columns):
                column = columns[name]
                assert column["nullable"] or column["default"] is not None, (
                    f"{table}.{name} is NOT NULL without a server default: the previous "
                    "release's INSERTs would fail"
                )
    finally:
        engine.dispose()
