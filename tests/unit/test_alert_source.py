"""The alerts topic the stored positions came from (store/alert_source.py), and what the worker
does with the records of a topic created again under the same name: they start again at offset
0, below every position stored for the old topic, and are applied all the same."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.alert import RecordPosition
from models.events import EventType
from store.alert_source import SourceCheck, settle_source
from store.schema import alert_source, alerts, partition_progress
from tests.builders import T0, alert
from tests.unit.test_pipeline_store import pipeline


async def _positions(engine: AsyncEngine) -> tuple[set[tuple[int, int | None]], set[object]]:
    async with engine.connect() as conn:
        progress = {(r.partition, r.next_offset) for r in await conn.execute(select(partition_progress))}
        stored = {
            (r.status, r.kafka_partition, r.kafka_offset) for r in await conn.execute(select(alerts))
        }
    return progress, stored


async def test_the_first_check_records_the_topic_and_changes_nothing(engine: AsyncEngine) -> None:
    p = pipeline(engine)
    await p.process_alerts([alert(instance="a")], [RecordPosition(0, 5)])
    before = await _positions(engine)
    assert await settle_source(engine, "alerts", "id-1", T0) == SourceCheck(None, False)
    assert await settle_source(engine, "alerts", "id-1", T0) == SourceCheck(("alerts", "id-1"), False)
    assert await _positions(engine) == before == ({(0, 6)}, {("firing", 0, 5)})
    async with engine.connect() as conn:
        row = (await conn.execute(select(alert_source))).one()
    assert (row.source, row.topic, row.topic_id) == ("alerts", "alerts", "id-1")


async def test_records_of_a_topic_created_again_are_applied_from_offset_0(engine: AsyncEngine) -> None:
    p = pipeline(engine)
    await settle_source(engine, "alerts", "id-1", T0)
    fired = alert(instance="a")
    (opened,) = await p.process_alerts([fired], [RecordPosition(0, 5)])
    # The old topic's offset 0 is a replay: applied already, whatever it says.
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))
    assert await p.process_alerts([resolution], [RecordPosition(0, 0)]) == []

    found = await settle_source(engine, "alerts", "id-2", T0 + timedelta(minutes=2))
    assert found == SourceCheck(("alerts", "id-1"), True)
    assert await _positions(engine) == ({(0, None)}, {("firing", None, None)})
    # The new topic's offset 0: the resolution the receiver accepted, applied.
    (resolved,) = await p.process_alerts([resolution], [RecordPosition(0, 0)])
    assert (resolved.type, resolved.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert await _positions(engine) == ({(0, 1)}, {("resolved", 0, 0)})
    # …and its replay is one again.
    assert await p.process_alerts([resolution], [RecordPosition(0, 0)]) == []


async def test_another_topic_named_forgets_the_positions_too(engine: AsyncEngine) -> None:
    p = pipeline(engine)
    await settle_source(engine, "alerts", "id-1", T0)
    await p.process_alerts([alert(instance="a")], [RecordPosition(1, 9)])
    found = await settle_source(engine, "alerts-v2", "id-9", T0)
    assert found == SourceCheck(("alerts", "id-1"), True)
    assert await _positions(engine) == ({(1, None)}, {("firing", None, None)})
