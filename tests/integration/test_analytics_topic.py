"""The report from the incident-events topic alone equals the report from the database, on the
real broker (and on SQLite and the real PostgreSQL): the same events, stored by the pipeline and
published to a topic of the test's own, give the very same figures."""

import asyncio
import importlib.util
import io
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from analytics.database import load_incident_times
from analytics.figures import ResponseTargets, compute_report
from analytics.incident_times import rebuild_times, times_from_events
from analytics.topic import read_events
from kafka_admin.topics import ensure_topic
from models.events import IncidentEvent
from models.settings import Settings
from models.severity import Severity
from sevflow.commands import add_commands, run_command
from sevflow.commands import report as report_command
from store.db import async_engine
from testkit.fakes.events import T0, IncidentStory
from testkit.local import REPO
from testkit.store_backends import fresh_database
from tests.unit.test_analytics_scenario import NOW, build_scenario

pytestmark = pytest.mark.integration


async def publish(bootstrap: str, topic: str, events: list[IncidentEvent], extra: list[bytes]) -> None:
    """Publish as the outbox relay does (key: incident id), plus repeats and foreign records."""
    await ensure_topic(bootstrap, topic, 4)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in [*events, *events[:4]]:  # at-least-once: some events twice
            await producer.send(topic, event.to_bytes(), key=event.incident_id.encode())
        for raw in extra:
            await producer.send(topic, raw, key=b"inc_0000000000000000")
        await producer.flush()
    finally:
        await producer.stop()


def unknown_type(event: IncidentEvent) -> bytes:
    return event.to_bytes().replace(b'"type":"opened"', b'"type":"postmortem_written"')


async def test_topic_and_database_give_identical_reports(engine, kafka_bootstrap: str) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    topic = f"test-analytics-{uuid.uuid4().hex[:8]}"
    await publish(kafka_bootstrap, topic, scenario.events, [unknown_type(scenario.events[0]), b"{oops"])

    progress: list[tuple[int, int]] = []
    read = await read_events(kafka_bootstrap, topic, progress=lambda n, t: progress.append((n, t)))
    expected_records = len(scenario.events) + 4 + 2
    assert read.records == expected_records
    assert progress[-1] == (expected_records, expected_records)
    assert dict(read.skipped) == {"unknown type": 1, "invalid record": 1}

    targets = ResponseTargets()
    from_topic = compute_report(times_from_events(read.events), targets, NOW)
    from_store = compute_report(await load_incident_times(engine), targets, NOW)
    assert from_topic == from_store
    assert from_topic.overall.incidents == 5
    assert from_topic.overall.sla_met == 3


async def test_example_consumer_reads_the_real_topic(engine, kafka_bootstrap: str) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    topic = f"test-analytics-example-{uuid.uuid4().hex[:8]}"
    await publish(kafka_bootstrap, topic, scenario.events, [unknown_type(scenario.events[0])])
    path = REPO / "examples" / "analytics_consumer.py"
    spec = importlib.util.spec_from_file_location("analytics_consumer_example_it", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)

    tracker = example.ResponseTracker()
    group = f"test-example-{uuid.uuid4().hex[:8]}"
    await example.consume(kafka_bootstrap, topic, group, tracker, idle_seconds=3)
    ours = {t.incident_id: t for t in await load_incident_times(engine)}
    assert set(tracker.incidents) == set(ours)
    for incident_id, view in tracker.incidents.items():
        assert view.first_acknowledged_at == ours[incident_id].first_acknowledged_at
        assert view.resolved_at == ours[incident_id].resolved_at
    assert tracker.ignored == 1
    # it committed: a second run of the same group finds nothing new
    again = example.ResponseTracker()
    await example.consume(kafka_bootstrap, topic, group, again, idle_seconds=2)
    assert again.incidents == {}


def test_cli_report_from_topic_matches_the_default(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    topic = f"test-analytics-cli-{uuid.uuid4().hex[:8]}"

    async def setup() -> None:
        engine = async_engine(url)
        try:
            scenario = await build_scenario(engine)
        finally:
            await engine.dispose()
        await publish(kafka_bootstrap, topic, scenario.events, [])

    asyncio.run(setup())
    settings = Settings(database_url=url, kafka_bootstrap=kafka_bootstrap, events_topic=topic)  # type: ignore[arg-type]
    import argparse

    root = argparse.ArgumentParser(prog="sevflow")
    add_commands(root.add_subparsers(dest="command", required=True), (report_command,))

    def report(*argv: str) -> tuple[int | None, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = run_command(
            settings,
            root.parse_args(["report", *argv]),
            groups=(report_command,),
            out=out,
            err=err,
            now=lambda: NOW,
        )
        return status, out.getvalue(), err.getvalue()

    status_db, out_db, _ = report()
    status_topic, out_topic, err_topic = report("--from-topic")
    assert (status_db, status_topic) == (0, 0)
    assert out_topic.replace(f"Source: topic {topic}", "Source: incident store") == out_db
    assert err_topic.splitlines()[-1].startswith("sevflow report: read ")
    assert err_topic.splitlines()[-1].endswith("records (100%)")
    missing = report("--from-topic", "--topic", f"no-such-topic-{uuid.uuid4().hex[:8]}")
    assert missing[0] == 1
    assert "does not exist" in missing[2]


def _with(event: IncidentEvent, **changes: object) -> bytes:
    """``event``'s wire document with top-level fields changed (or, under ``incident``, the
    snapshot's)."""
    document = json.loads(event.to_bytes())
    snapshot = changes.pop("incident", None)
    if isinstance(snapshot, dict):
        document["incident"] = {**document["incident"], **snapshot}
    document.update(changes)
    return json.dumps(document).encode()


async def test_a_topic_of_hostile_records_still_gives_its_report(kafka_bootstrap: str) -> None:
    """An event of a type this version does not know in the middle of an incident left a hole in
    its sequence, and the whole incident out of the report; a type that is a list, a time
    without its zone or an opening in the year 9999 stopped the report with a traceback; a
    schema_version of "2" was read as version 1."""
    story = IncidentStory(name="ApiDown", severity=Severity.SEV2)
    opened, acknowledged, resolved = [
        *story.fire(at=T0),
        *story.ack(at=T0 + timedelta(minutes=5)),
        *story.resolve(at=T0 + timedelta(minutes=45)),
    ]
    events = [opened, acknowledged, resolved.model_copy(update={"sequence": 4})]
    later = _with(acknowledged, sequence=3, type="postmortem_written", event_id=str(uuid.uuid4()))
    other = IncidentStory(name="DbDown", severity=Severity.SEV1)
    (other_opened,) = other.fire(at=T0)
    hostile = [
        later,
        _with(other_opened, type=["opened"]),
        _with(other_opened, type={}),
        _with(other_opened, incident={"opened_at": "2026-01-15T14:30:00"}),
        _with(other_opened, schema_version="2"),
        _with(other_opened, schema_version=2.0),
        _with(other_opened, schema_version=True),
        _with(other_opened, incident={"opened_at": "9999-12-31T23:59:00Z"}),
    ]
    topic = f"test-analytics-hostile-{uuid.uuid4().hex[:8]}"
    await publish(kafka_bootstrap, topic, events, hostile)
    read = await read_events(kafka_bootstrap, topic)
    assert dict(read.skipped) == {"unknown type": 1, "invalid record": 6}
    assert read.passed_over == {(opened.incident_id, 3)}
    rebuilt = rebuild_times(read.events, passed_over=read.passed_over)
    assert rebuilt.incomplete == []
    by_id = {t.incident_id: t for t in rebuilt.times}
    assert by_id[opened.incident_id].time_to_acknowledge == timedelta(minutes=5)
    assert by_id[opened.incident_id].time_to_resolve == timedelta(minutes=45)
    report = compute_report(rebuilt.times, ResponseTargets(), T0 + timedelta(days=1))
    assert report.overall.incidents == 2  # ApiDown, and DbDown opened in the year 9999
    assert report.overall.sla_met == 1
