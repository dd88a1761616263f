"""The report from the incident-events topic alone equals the report from the database, on the
real broker (and on SQLite and the real PostgreSQL): the same events, stored by the pipeline and
published to a topic of the test's own, give the very same figures."""

import asyncio
import importlib.util
import io
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from analytics.database import load_incident_times
from analytics.figures import ResponseTargets, compute_report
from analytics.incident_times import times_from_events
from analytics.topic import read_events
from kafka_admin.topics import ensure_topic
from models.events import IncidentEvent
from models.settings import Settings
from sevflow.commands import add_commands, run_command
from sevflow.commands import report as report_command
from store.db import async_engine
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
