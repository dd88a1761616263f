"""The delivery log's batch view: a preload answers like the database, and stays current.

A sink worker reads the log once per polled batch; these tests pin that every answer given from
that view is the one the database would give, including after this process's own writes, and
that anything outside the preloaded batch is still read from the database.
"""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.deliveries import STEP_MAX, DeliveryLog, StepRecord, stored_step
from store.sinks_schema import sink_deliveries, sink_refs

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


async def test_preloaded_answers_match_the_database(engine: AsyncEngine) -> None:
    writer = DeliveryLog(engine)
    await writer.confirm("pagerduty", ["e1"], "trigger", "inc-1", NOW, result={"dedup_key": "inc-1"},
                         refs={"dedup_key": "inc-1"})  # fmt: skip
    await writer.begin("pagerduty", "e2", "trigger", "inc-2", NOW)
    await writer.confirm("slack", ["e3"], "announce", "inc-3", NOW, refs={"ts": "1.2"})

    log = DeliveryLog(engine)
    await log.preload("pagerduty", ["e1", "e2", "e3"], ["inc-1", "inc-2", "inc-3"])
    fresh = DeliveryLog(engine)  # no preload: every answer from the database
    for event_id, step, scope in [("e1", "trigger", "inc-1"), ("e2", "trigger", "inc-2"),
                                  ("e3", "trigger", "inc-3"), ("e1", "resolve", "inc-1")]:  # fmt: skip
        assert await log.step("pagerduty", event_id, step) == await fresh.step(
            "pagerduty", event_id, step
        )
        assert await log.refs("pagerduty", scope) == await fresh.refs("pagerduty", scope)
        assert await log.state("pagerduty", scope, event_id, step) == await fresh.state(
            "pagerduty", scope, event_id, step
        )
    assert await log.step("pagerduty", "e1", "trigger") == StepRecord("done", {"dedup_key": "inc-1"})
    assert await log.step("pagerduty", "e2", "trigger") == StepRecord("pending", {})
    assert await log.refs("pagerduty", "inc-3") == {}  # slack's refs are not pagerduty's


async def test_confirmations_written_through_the_driver_read_back_through_sqlalchemy(
    engine: AsyncEngine,
) -> None:
    """Confirmations go to the driver with their values in stored form (store/driver_sql.py):
    SQLAlchemy's column types read them back as what was confirmed (times in UTC whatever the
    offset given, the result as JSON); a step confirmed again keeps the start of its pending row
    and takes the new result and time; a reference takes its newest value."""
    later = datetime(2026, 1, 15, 12, 30, 5, tzinfo=timezone(timedelta(hours=2)))  # 10:30:05 UTC
    log = DeliveryLog(engine)
    await log.begin("pagerduty", "e1", "trigger", "inc-1", NOW)
    result = {"dedup_key": "inc-1", "note": "é ✓"}
    await log.confirm(
        "pagerduty", ["e1", "e2"], "trigger", "inc-1", later, result=result, refs={"dedup_key": "inc-1"}
    )
    await log.confirm("pagerduty", ["e3"], "trigger", "inc-1", later, refs={"dedup_key": "inc-9"})
    async with engine.connect() as conn:
        steps = (await conn.execute(select(sink_deliveries).order_by(sink_deliveries.c.event_id))).all()
        refs = (await conn.execute(select(sink_refs))).all()
    assert [(r.event_id, r.status, r.result, r.incident_id) for r in steps] == [
        ("e1", "done", {"dedup_key": "inc-1", "note": "é ✓"}, "inc-1"),
        ("e2", "done", {"dedup_key": "inc-1", "note": "é ✓"}, "inc-1"),
        ("e3", "done", {}, "inc-1"),
    ]
    assert [r.started_at for r in steps] == [NOW, later, later]
    assert {r.delivered_at for r in steps} == {later}
    assert all(r.delivered_at.utcoffset() == timedelta(0) for r in steps)
    assert [(r.sink, r.scope, r.key, r.value, r.updated_at) for r in refs] == [
        ("pagerduty", "inc-1", "dedup_key", "inc-9", later)
    ]
    fresh = DeliveryLog(engine)
    await fresh.preload("pagerduty", ["e1", "e3"], ["inc-1"])
    assert await fresh.step("pagerduty", "e1", "trigger") == StepRecord(
        "done", {"dedup_key": "inc-1", "note": "é ✓"}
    )
    assert await fresh.refs("pagerduty", "inc-1") == {"dedup_key": "inc-9"}


async def test_own_writes_keep_the_view_current(engine: AsyncEngine) -> None:
    log = DeliveryLog(engine)
    await log.preload("slack", ["e1", "e2"], ["inc-1"])
    assert await log.step("slack", "e1", "channel") is None

    await log.begin("slack", "e1", "channel", "inc-1", NOW)
    assert await log.step("slack", "e1", "channel") == StepRecord("pending", {})
    await log.note("slack", "e1", "channel", {"name": "incident-20260115-db"})
    assert await log.step("slack", "e1", "channel") == StepRecord(
        "pending", {"name": "incident-20260115-db"}
    )
    await log.confirm("slack", ["e1", "e2"], "channel", "inc-1", NOW, result={"channel": "C1"},
                      refs={"channel": "C1"})  # fmt: skip
    await log.put_refs("slack", "inc-1", {"announce_ts": "1.5"}, NOW)

    fresh = DeliveryLog(engine)
    for event_id in ("e1", "e2"):
        assert await log.step("slack", event_id, "channel") == StepRecord("done", {"channel": "C1"})
        assert await fresh.step("slack", event_id, "channel") == StepRecord("done", {"channel": "C1"})
    assert await log.refs("slack", "inc-1") == {"channel": "C1", "announce_ts": "1.5"}
    assert await fresh.refs("slack", "inc-1") == {"channel": "C1", "announce_ts": "1.5"}


async def test_outside_the_batch_reads_the_database(engine: AsyncEngine) -> None:
    log = DeliveryLog(engine)
    await log.preload("pagerduty", ["e1"], ["inc-1"])
    other = DeliveryLog(engine)  # another writer: only entries outside the batch may change
    await other.confirm("pagerduty", ["e9"], "trigger", "inc-9", NOW, refs={"dedup_key": "inc-9"})
    await other.put_refs("pagerduty", "storm:s1", {"inc-9": "SEV3"}, NOW)
    assert await log.step("pagerduty", "e9", "trigger") == StepRecord("done", {})
    assert await log.refs("pagerduty", "inc-9") == {"dedup_key": "inc-9"}
    assert await log.refs("pagerduty", "storm:s1") == {"inc-9": "SEV3"}
    # A batch that holds e1 again (polled again after a rebalance) reads it from the database.
    await log.preload("pagerduty", ["e9"], ["inc-9"])
    await other.confirm("pagerduty", ["e1"], "trigger", "inc-1", NOW)
    await log.preload("pagerduty", ["e1"], ["inc-1"])
    assert await log.step("pagerduty", "e1", "trigger") == StepRecord("done", {})


def test_a_long_step_is_stored_within_the_column() -> None:
    short = "trigger:escalation:secondary"
    assert stored_step(short) == short
    long = "acknowledge:escalation:" + "x" * 60
    assert len(stored_step(long)) == STEP_MAX
    assert stored_step(long) == stored_step(long)
    assert stored_step(long) != stored_step(long + "/repeat1")


class Statements:
    """The SELECTs of the delivery log's tables an engine runs (observed, nothing replaced)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.reads: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.reads.append(statement)


async def test_an_earlier_batch_is_still_answered_from_memory(engine: AsyncEngine) -> None:
    """A lane still waiting for its turn when the next poll is preloaded (lanes queue behind the
    sink's concurrency) finds its events and incident in the view: no query per event."""
    writer = DeliveryLog(engine)
    await writer.confirm("pagerduty", ["e1"], "trigger", "inc-1", NOW, refs={"dedup_key": "inc-1"})
    log = DeliveryLog(engine)
    await log.preload("pagerduty", ["e1"], ["inc-1"])
    await log.preload("pagerduty", ["e2"], ["inc-2"])  # the next poll, while e1 waits its turn
    seen = Statements(engine)
    assert await log.step("pagerduty", "e1", "trigger") == StepRecord("done", {})
    assert await log.refs("pagerduty", "inc-1") == {"dedup_key": "inc-1"}
    assert await log.state("pagerduty", "inc-2", "e2", "trigger") == ({}, None)
    assert seen.reads == []


async def test_a_batch_read_again_replaces_what_the_view_held(engine: AsyncEngine) -> None:
    """A record polled again (after a rebalance: another process may have delivered it
    meanwhile) is read again, its steps and its incident's references replaced, not merged."""
    log = DeliveryLog(engine)
    await log.preload("pagerduty", ["e1"], ["inc-1"])
    other = DeliveryLog(engine)
    await other.confirm("pagerduty", ["e1"], "trigger", "inc-1", NOW, refs={"dedup_key": "k2"})
    await log.preload("pagerduty", ["e1"], ["inc-1"])
    assert await log.step("pagerduty", "e1", "trigger") == StepRecord("done", {})
    assert await log.refs("pagerduty", "inc-1") == {"dedup_key": "k2"}


async def test_the_view_forgets_its_oldest_entries_beyond_its_size(engine: AsyncEngine) -> None:
    log = DeliveryLog(engine)
    log.VIEW_MAX = 2
    other = DeliveryLog(engine)
    for i in range(3):
        await log.preload("pagerduty", [f"e{i}"], [f"inc-{i}"])
    await other.confirm("pagerduty", ["e0", "e2"], "trigger", "inc-0", NOW, refs={"k": "v"})
    # e0 and inc-0 were forgotten: read from the database; e2 is still the view's.
    assert await log.step("pagerduty", "e0", "trigger") == StepRecord("done", {})
    assert await log.refs("pagerduty", "inc-0") == {"k": "v"}
    assert await log.step("pagerduty", "e2", "trigger") is None
