"""Alertmanager re-sends every firing group each ``group_interval``: a repeat of an alert's status
changes nothing, and the worker writes nothing for it but its progress on the alerts topic."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.alert import RecordPosition
from models.events import Actor, EventType
from models.incident import Command, LifecyclePolicy
from store.incidents import IncidentStore
from store.schema import partition_progress
from streams.pipeline import Pipeline, regroup
from streams.rules import load_rules
from tests.builders import T0, alert


def pipeline(engine: AsyncEngine) -> Pipeline:
    return Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())


@contextmanager
def writes(engine: AsyncEngine) -> Iterator[list[str]]:
    """The data-changing statements sent to the database while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def positions(first: int, n: int) -> list[RecordPosition | None]:
    return [RecordPosition(0, offset) for offset in range(first, first + n)]


async def test_a_resent_group_writes_only_the_topic_progress(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    firing = [alert(instance=f"host-{i}") for i in range(5)] + [alert("CheckoutDown", instance="x")]
    resolved = alert("DiskFull", status="resolved", instance="y")
    first = await p.process_alerts([*firing, resolved], positions(0, 7))
    assert sum(e.type is EventType.OPENED for e in first) == 2
    later = T0 + timedelta(minutes=5)
    resent = [r.model_copy(update={"received_at": later}) for r in [*firing, resolved]]
    with writes(engine) as seen:
        assert await p.process_alerts(resent, positions(7, 7)) == []
    assert seen, "the progress on the alerts topic is written"
    assert all(s.startswith(f"INSERT INTO {partition_progress.name} ") for s in seen), seen
    async with engine.connect() as conn:
        row = (await conn.execute(select(partition_progress))).mappings().one()
    assert row["next_offset"] == 14


async def test_a_repeat_in_a_batch_with_changes_is_still_a_repeat(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    (opened,) = await p.process_alerts([alert(instance="a")], positions(0, 1))
    later = T0 + timedelta(minutes=1)
    batch = [alert(instance="a", at=later), alert(instance="b", at=later)]
    events = await p.process_alerts(batch, positions(1, 2))
    assert [(e.type, e.alert and e.alert.labels["instance"]) for e in events] == [
        (EventType.ALERT_ADDED, "b")
    ]
    incident = await p.store.get(opened.incident_id)
    assert incident is not None
    assert (incident.alerts_total, incident.alerts_firing, incident.sequence) == (2, 2, 2)


@contextmanager
def reads(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SELECT statements sent to the database while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() == "SELECT":
            seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_resent_group_reads_neither_labels_nor_incident_documents(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    firing = [alert(instance=f"host-{i}") for i in range(5)] + [alert("CheckoutDown", instance="x")]
    resolved = alert("DiskFull", status="resolved", instance="y")
    await p.process_alerts([*firing, resolved], positions(0, 7))
    later = T0 + timedelta(minutes=5)
    resent = [r.model_copy(update={"received_at": later}) for r in [*firing, resolved]]
    with reads(engine) as seen:
        assert await p.process_alerts(resent, positions(7, 7)) == []
    assert seen
    assert not [s for s in seen if "alerts.labels" in s or "incidents.document" in s], seen


async def test_a_resolution_and_a_refiring_in_one_batch_are_both_applied(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    firing = alert(instance="a")
    (opened,) = await p.process_alerts([firing], positions(0, 1))
    later = T0 + timedelta(minutes=1)
    resolved = alert(instance="a", status="resolved", at=later)
    again = firing.model_copy(update={"received_at": later + timedelta(seconds=1)})
    events = await p.process_alerts([resolved, again, alert("Other", at=later)], positions(1, 3))
    assert [e.type for e in events if e.incident_id == opened.incident_id] == [
        EventType.ALERT_RESOLVED,
        EventType.ALERT_REFIRED,
    ]


async def test_a_repeat_of_an_incident_resolved_by_hand_past_the_reopen_window_opens_one(
    engine,  # type: ignore[no-untyped-def]
) -> None:
    p = pipeline(engine)
    firing = [alert(instance=f"host-{i}") for i in range(2)]
    opened = (await p.process_alerts(firing, positions(0, 2)))[0]
    resolve = Command(
        command_id="c1",
        incident_id=opened.incident_id,
        action="resolve",
        actor=Actor(via="cli", name="ana"),
        requested_at=T0 + timedelta(minutes=1),
    )
    assert (await p.process_command(resolve)).applied
    later = T0 + LifecyclePolicy().reopen_window + timedelta(minutes=2)
    resent = [r.model_copy(update={"received_at": later}) for r in firing]
    events = await p.process_alerts(resent, positions(2, 2))
    assert [e.type for e in events] == [EventType.OPENED, EventType.ALERT_ADDED]
    assert events[0].incident_id != opened.incident_id


def test_a_record_sent_under_the_configured_grouping_is_not_copied() -> None:
    record = alert(instance="a")  # grouped by alertname, as group_by=("alertname",) groups it
    assert regroup(record, ("alertname",)) is record
    moved = regroup(record, ("instance",))
    assert moved.group_key == '{}:{instance="a"}'
    assert moved.labels == record.labels
