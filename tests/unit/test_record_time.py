"""Timers in record time: the quiet period expires when the records applied (a watermark) have
passed it, not when the wall clock has; a renewed firing still in the backlog is applied first."""

from datetime import timedelta

from models.alert import RecordPosition
from models.events import EventType, IncidentState
from models.incident import LifecyclePolicy
from models.watermark import watermark
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.record_time import RecordTime
from streams.rules import load_rules
from tests.builders import T0, alert, command

POLICY = LifecyclePolicy(quiet_period=timedelta(minutes=5))
MAX_AGE = timedelta(seconds=30)


def minutes(n: float):  # type: ignore[no-untyped-def]
    return T0 + timedelta(minutes=n)


def test_the_watermark_is_the_oldest_partition_and_an_idle_partition_does_not_hold_it() -> None:
    applied = {0: minutes(3), 1: minutes(7)}
    assert watermark(applied, {0: 2, 1: 0}, minutes(30)) == minutes(3)  # 0 is behind
    assert watermark(applied, {0: 0, 1: 0}, minutes(30)) == minutes(30)  # all idle
    assert watermark(applied, {0: 0, 1: 4}, minutes(30)) == minutes(7)
    assert watermark(applied, {0: 0, 1: 0, 2: 0}, minutes(30)) == minutes(30)  # 2: never used
    assert watermark(applied, {0: 0, 1: 0, 2: 1}, minutes(30)) is None  # 2: waiting, none applied
    assert watermark(applied, {}, minutes(30)) is None  # no measurement, no watermark
    assert watermark({0: minutes(40)}, {0: 0}, minutes(30)) == minutes(40)


async def test_a_renewed_firing_in_the_backlog_keeps_its_incident_open(engine) -> None:  # type: ignore[no-untyped-def]
    """One incident, two alerts on two partitions. Both resolve; the renewed firing of one waits
    on its partition while the worker was away for half an hour (lag far over the quiet period).
    The wall clock says "quiet for 28 minutes"; record time says 2. Once applied, the incident
    stays open, and it resolves only a real quiet period (in record time) after the last
    resolution."""
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    record_time = RecordTime(store, max_age=MAX_AGE)
    a, b = RecordPosition(0, 0), RecordPosition(1, 0)
    (opened, _) = await p.process_alerts([alert(instance="a"), alert(instance="b")], [a, b])
    await p.process_alerts(
        [alert(instance="a", status="resolved", at=minutes(1))], [RecordPosition(0, 1)]
    )
    await p.process_alerts(
        [alert(instance="b", status="resolved", at=minutes(2))], [RecordPosition(1, 1)]
    )
    # b fired again at minute 6 (partition 1, offset 2): not applied yet. Now is minute 30.
    now = minutes(30)
    assert await record_time.watermark(now) is None  # not measured yet: nothing expires
    record_time.observe({0: 0, 1: 1}, now)
    mark = await record_time.watermark(now)
    assert mark == minutes(2)
    assert await p.expire_quiet(mark) == []
    refired = await p.process_alerts([alert(instance="b", at=minutes(6))], [RecordPosition(1, 2)])
    assert [e.type for e in refired] == [EventType.ALERT_REFIRED]
    incident = await store.get(opened.incident_id)
    assert incident is not None
    assert incident.state is IncidentState.TRIGGERED

    # The backlog drains: b resolves at minute 8; records of other alerts follow on partition 1.
    await p.process_alerts(
        [alert(instance="b", status="resolved", at=minutes(8))], [RecordPosition(1, 3)]
    )
    await p.process_alerts([alert("Other", instance="x", at=minutes(12))], [RecordPosition(1, 4)])
    record_time.observe({0: 0, 1: 3}, minutes(31))
    mark = await record_time.watermark(minutes(31))
    assert mark == minutes(12)  # the quiet period runs until minute 13
    assert await p.expire_quiet(mark) == []
    await p.process_alerts([alert("Other", instance="y", at=minutes(14))], [RecordPosition(1, 5)])
    mark = await record_time.watermark(minutes(31))
    assert mark == minutes(14)
    (closed,) = await p.expire_quiet(mark)
    assert (closed.type, closed.incident_id) == (EventType.RESOLVED, opened.incident_id)
    assert closed.incident.resolved_at == minutes(14)


async def test_a_stale_or_missing_measurement_gives_no_watermark(engine) -> None:  # type: ignore[no-untyped-def]
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    record_time = RecordTime(store, max_age=MAX_AGE)
    await p.process_alerts([alert(instance="a", at=minutes(1))], [RecordPosition(0, 0)])
    record_time.observe({0: 0}, minutes(20))
    assert await record_time.watermark(minutes(20)) == minutes(20)
    assert await record_time.watermark(minutes(20) + MAX_AGE + timedelta(seconds=1)) is None
    record_time.observe({0: 0}, minutes(21))
    record_time.forget()  # Kafka could not be measured
    assert await record_time.watermark(minutes(21)) is None


async def test_the_applied_record_time_never_moves_back(engine) -> None:  # type: ignore[no-untyped-def]
    """A replayed batch, or a record stamped by a receiver with a slower clock, leaves the
    partition's progress where it was."""
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    await p.process_alerts([alert(instance="a", at=minutes(9))], [RecordPosition(0, 5)])
    await p.process_alerts([alert(instance="b", at=minutes(4))], [RecordPosition(0, 6)])
    await p.process_alerts([alert(instance="c", at=minutes(2))], [RecordPosition(3, 1)])
    assert await store.partition_progress() == {0: minutes(9), 3: minutes(2)}


async def test_a_replayed_repeat_changes_nothing_after_a_hand_resolution(engine) -> None:  # type: ignore[no-untyped-def]
    """Found by the model-based test (tests/model): an HA peer's repeat of a firing alert is
    applied (it changes nothing: the alert fires in its open incident), then a resolution by hand
    requested before the repeat is applied, and the worker, crashed before committing, reads the
    repeat again. Judged against the store's state of now (resolved more than the reopen window
    before the repeat), the repeat would open a second incident; it was applied already (its
    offset is below the partition's applied offset), so it changes nothing, as the first time."""
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    first, repeat = alert(instance="a"), alert(instance="a", at=minutes(70))
    (opened,) = await p.process_alerts([first], [RecordPosition(0, 0)])
    assert await p.process_alerts([repeat], [RecordPosition(0, 1)]) == []
    resolve = command(opened.incident_id, "resolve", at=minutes(1))
    assert (await p.process_command(resolve)).applied
    replayed = await p.process_alerts([first, repeat], [RecordPosition(0, 0), RecordPosition(0, 1)])
    assert replayed == []
    (incident,) = await store.list_incidents()
    assert incident.state is IncidentState.RESOLVED


async def test_a_late_resolution_copy_does_not_resolve_a_new_episode_after_a_firing_copy(engine) -> None:  # type: ignore[no-untyped-def]
    """Found by the model-based test (tests/model): an alert fires (episode 1) and resolves; an HA
    peer's late copy of its firing comes after the resolution and makes it fire again with
    episode 1's ``startsAt``; then it really fires again (episode 2, a later ``startsAt``) and a
    late copy of episode 1's resolution follows. The episode-2 firing must be recorded (its
    ``startsAt``), though the alert was firing already: otherwise the old resolution, judged
    against episode 1's start, resolves an alert whose last word is firing."""
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    fired = alert(instance="a", at=minutes(0))
    resolved = alert(instance="a", status="resolved", at=minutes(0))
    firing_copy = fired.model_copy(update={"received_at": minutes(2)})
    episode_2 = alert(instance="a", at=minutes(2)).model_copy(update={"starts_at": minutes(2)})
    resolution_copy = resolved.model_copy(update={"received_at": minutes(2.1)})
    records = [fired, resolved, firing_copy, episode_2, resolution_copy]
    await p.process_alerts(records, [RecordPosition(0, n) for n in range(len(records))])
    async with store.transaction() as tx:
        row = (await tx.load_alerts([fired.fingerprint]))[fired.fingerprint]
    assert (row.status, row.starts_at) == ("firing", minutes(2))
    (incident,) = await store.list_incidents()
    assert incident.alerts_firing == 1


async def test_records_stamped_in_the_future_do_not_carry_the_watermark_past_the_workers_clock(
    engine,
) -> None:  # type: ignore[no-untyped-def]
    """A receiver whose clock is hours ahead, or anyone writing to the alerts topic, stamps
    records in the future. Their time was each partition's progress, which never moves back:
    one such record per partition put the watermark in the year 8999, and every quiet incident
    resolved at the next tick, for good. A partition's progress is now bounded by the worker's
    clock as it applies the records, and the watermark by the worker's clock as it reads it."""
    store = IncidentStore(engine)
    p = Pipeline(store, load_rules(None), POLICY)
    record_time = RecordTime(store, max_age=MAX_AGE)
    await p.process_alerts([alert(instance="a")], [RecordPosition(0, 0)], applied_at=minutes(0))
    (resolved,) = await p.process_alerts(
        [alert(instance="a", status="resolved", at=minutes(1))],
        [RecordPosition(0, 1)],
        applied_at=minutes(1),
    )
    far = T0.replace(year=8999)
    await p.process_alerts(
        [alert("Skewed", instance="x", at=far), alert("Skewed", instance="y", at=far)],
        [RecordPosition(0, 2), RecordPosition(1, 0)],
        applied_at=minutes(2),
    )
    assert await store.partition_progress() == {0: minutes(2), 1: minutes(2)}
    record_time.observe({0: 0, 1: 0}, minutes(3))
    mark = await record_time.watermark(minutes(3))
    assert mark == minutes(3)
    assert await p.expire_quiet(mark) == []  # quiet since minute 1: 5 minutes is minute 6
    assert (await store.get(resolved.incident_id)).state is not IncidentState.RESOLVED  # type: ignore[union-attr]

    # Progress stored in the future before the worker bounded it: the watermark is still not
    # later than the worker's clock.
    await p.process_alerts([alert("Old", instance="z", at=far)], [RecordPosition(2, 0)])
    record_time.observe({0: 0, 1: 0, 2: 0}, minutes(4))
    assert await record_time.watermark(minutes(4)) == minutes(4)
