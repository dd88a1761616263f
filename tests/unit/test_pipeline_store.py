"""The pipeline over the real store (SQLite here, PostgreSQL under the integration marker):
incident, alerts and events are committed together; replays change nothing."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models.events import EventType, IncidentState
from models.incident import SEVFLOW, LifecyclePolicy, annotate
from store.incidents import IncidentStore
from store.schema import alerts, incident_events, incident_groups
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert, command

POLICY = LifecyclePolicy(quiet_period=timedelta(minutes=5))


def pipeline(engine, **kw) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(
        IncidentStore(engine), load_rules(None), kw.get("policy", POLICY), kw.get("group_by", ())
    )


async def count_events(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(incident_events))).scalar_one())


async def test_batch_opens_one_incident_per_group(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    batch = [alert(instance="a"), alert(instance="b"), alert("CheckoutDown", instance="c")]
    events = await p.process_alerts(batch)
    assert sorted(e.type for e in events) == sorted(
        [EventType.OPENED, EventType.ALERT_ADDED, EventType.OPENED]
    )
    incidents = await p.store.list_incidents()
    assert len(incidents) == 2
    by_title = {i.title: i for i in incidents}
    assert by_title["HighErrorRate fired"].alerts_firing == 2
    assert by_title["HighErrorRate fired"].severity.value == "SEV2"
    assert by_title["CheckoutDown fired"].severity.value == "SEV1"
    timeline = await p.store.timeline(by_title["HighErrorRate fired"].id)
    assert [e.sequence for e in timeline] == [1, 2]
    assert await count_events(engine) == 3


async def test_replayed_batch_changes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    batch = [alert(instance="a"), alert(instance="a", status="resolved", at=T0 + timedelta(minutes=2))]
    first = await p.process_alerts(batch)
    assert [e.type for e in first] == [EventType.OPENED, EventType.ALERT_RESOLVED]
    assert await p.process_alerts(batch) == []
    assert await count_events(engine) == 2
    async with engine.connect() as conn:
        row = (await conn.execute(select(alerts))).mappings().one()
    assert row["status"] == "resolved"
    assert row["incident_id"] == first[0].incident_id
    assert row["first_received_at"] == T0


async def test_quiet_period_resolution_and_commands(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine)
    (opened,) = await p.process_alerts([alert(instance="a")])
    incident_id = opened.incident_id
    ack = await p.process_command(command(incident_id, at=T0 + timedelta(minutes=1)))
    assert ack.applied
    assert [e.type for e in ack.events] == [EventType.ACKNOWLEDGED]
    again = await p.process_command(command(incident_id, at=T0 + timedelta(minutes=1)))
    assert not again.applied
    assert again.reason == "command already applied"
    missing = await p.process_command(command("inc_nope", command_id="c9"))
    assert not missing.applied
    await p.process_alerts([alert(instance="a", status="resolved", at=T0 + timedelta(minutes=2))])
    assert await p.expire_quiet(T0 + timedelta(minutes=6)) == []
    (resolved,) = await p.expire_quiet(T0 + timedelta(minutes=7))
    assert resolved.type is EventType.RESOLVED
    incident = await p.store.get(incident_id)
    assert incident is not None
    assert incident.state is IncidentState.RESOLVED
    assert await p.expire_quiet(T0 + timedelta(minutes=8)) == []


async def test_group_by_labels_overrides_group_key(engine) -> None:  # type: ignore[no-untyped-def]
    p = pipeline(engine, group_by=("service",))
    await p.process_alerts(
        [alert("A", service="checkout"), alert("B", service="checkout"), alert("C", service="search")]
    )
    incidents = await p.store.list_incidents()
    assert sorted(i.group_key for i in incidents) == ['{}:{service="checkout"}', '{}:{service="search"}']


async def test_a_change_to_an_older_incident_leaves_the_group_with_its_latest(engine) -> None:  # type: ignore[no-untyped-def]
    """An escalation step recorded on a group's earlier, resolved incident (the loop catching up)
    must not make that incident the group's current one again: the next alert joins the open
    incident instead of opening a third."""
    p = pipeline(engine)
    (first,) = await p.process_alerts([alert(instance="a")])
    await p.process_alerts([alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))])
    await p.expire_quiet(T0 + timedelta(minutes=7))
    later = T0 + timedelta(hours=3)  # past the reopen window: a new incident
    (second,) = await p.process_alerts([alert(instance="b", at=later)])
    assert second.type is EventType.OPENED
    assert second.incident_id != first.incident_id

    async with p.store.transaction() as tx:
        older = await tx.lock_incident(first.incident_id)
        assert older is not None
        tx.stage(annotate(older, EventType.SLA_BREACHED, SEVFLOW, later, reason="caught up"))

    events = await p.process_alerts([alert(instance="c", at=later + timedelta(minutes=1))])
    assert [(e.type, e.incident_id) for e in events] == [(EventType.ALERT_ADDED, second.incident_id)]
    async with engine.connect() as conn:
        pointer = (await conn.execute(select(incident_groups.c.incident_id))).scalar_one()
    assert pointer == second.incident_id
    timeline = await p.store.timeline(first.incident_id)
    assert timeline[-1].type is EventType.SLA_BREACHED


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_a_command_requested_before_a_reopen_is_refused(engine, action: str) -> None:  # type: ignore[no-untyped-def]
    """Commands and alerts come on separate topics: an acknowledgement or resolution requested
    while the incident was resolved, applied after it reopened, must not silence the flap."""
    p = pipeline(engine)
    (opened,) = await p.process_alerts([alert(instance="a")])
    await p.process_alerts([alert(instance="a", status="resolved", at=T0 + timedelta(minutes=2))])
    await p.expire_quiet(T0 + timedelta(minutes=7))
    reopening = await p.process_alerts([alert(instance="a", at=T0 + timedelta(minutes=20))])
    assert reopening[0].type is EventType.REOPENED

    late = command(opened.incident_id, action, at=T0 + timedelta(minutes=10), command_id="late")
    result = await p.process_command(late)
    assert not result.applied
    assert result.reason.startswith("requested before the incident reopened at 2026-11-27T12:20:00")
    incident = await p.store.get(opened.incident_id)
    assert incident is not None
    assert incident.state is IncidentState.TRIGGERED
    assert incident.reopened_at == T0 + timedelta(minutes=20)

    fresh = command(opened.incident_id, action, at=T0 + timedelta(minutes=21), command_id="fresh")
    assert (await p.process_command(fresh)).applied


async def test_an_alert_sent_in_two_groups_stays_in_its_incident(engine) -> None:  # type: ignore[no-untyped-def]
    """Alertmanager routes with ``continue: true`` send one alert in two groups: it counts in one
    incident, and its resolution from either group resolves that incident."""
    p = pipeline(engine)
    team_a, team_b = '{}:{team="a"}', '{}:{team="b"}'
    (opened,) = await p.process_alerts([alert(instance="a", group=team_a)])
    assert await p.process_alerts([alert(instance="a", group=team_b)]) == []  # a duplicate
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1), group=team_b)
    (resolved,) = await p.process_alerts([resolution])
    assert (resolved.type, resolved.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert resolved.incident.alerts_firing == 0
    again = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1), group=team_a)
    assert await p.process_alerts([again]) == []
    (closed,) = await p.expire_quiet(T0 + timedelta(minutes=7))
    assert (closed.type, closed.incident_id) == (EventType.RESOLVED, opened.incident_id)
    assert [i.id for i in await p.store.list_incidents()] == [opened.incident_id]


async def test_an_alert_resent_in_another_group_after_a_resolution_by_hand_pages_nobody(engine) -> None:  # type: ignore[no-untyped-def]
    """An incident resolved by hand while its alert still fires: Alertmanager's re-sends of the
    alert change nothing, through the route that opened the incident or through a second one
    (``continue: true``); the alert's resolution from either reaches the incident."""
    p = pipeline(engine)
    team_a, team_b = '{}:{team="a"}', '{}:{team="b"}'
    (opened,) = await p.process_alerts([alert(instance="a", group=team_a)])
    assert await p.process_alerts([alert(instance="a", group=team_b)]) == []
    by_hand = command(opened.incident_id, "resolve", at=T0 + timedelta(minutes=2))
    assert (await p.process_command(by_hand)).applied
    later = T0 + timedelta(minutes=5)
    assert (
        await p.process_alerts(
            [alert(instance="a", group=team_a).model_copy(update={"received_at": later})]
        )
        == []
    )
    assert (
        await p.process_alerts(
            [alert(instance="a", group=team_b).model_copy(update={"received_at": later})]
        )
        == []
    )
    assert [i.id for i in await p.store.list_incidents()] == [opened.incident_id]
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=6), group=team_b)
    (resolved,) = await p.process_alerts([resolution])
    assert (resolved.type, resolved.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert resolved.incident.alerts_firing == 0


async def test_an_alert_that_fires_anew_in_another_group_joins_that_group(engine) -> None:  # type: ignore[no-untyped-def]
    """Once its incident can no longer take it back (resolved, past the reopen window), an alert's
    next firing goes to its record's group."""
    p = pipeline(engine)
    team_a, team_b = '{}:{team="a"}', '{}:{team="b"}'
    (first,) = await p.process_alerts([alert(instance="a", group=team_a)])
    await p.process_alerts(
        [alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1), group=team_a)]
    )
    await p.expire_quiet(T0 + timedelta(minutes=6))
    later = T0 + timedelta(minutes=6) + POLICY.reopen_window + timedelta(minutes=1)
    (second,) = await p.process_alerts([alert(instance="a", at=later, group=team_b)])
    assert second.type is EventType.OPENED
    assert second.incident_id != first.incident_id
    assert second.incident.group_key == team_b


@pytest.mark.parametrize("closed", [False, True])
async def test_an_alert_in_two_groups_flapping_stays_in_its_incident(engine, closed: bool) -> None:  # type: ignore[no-untyped-def]
    """An alert sent in two groups (``continue: true``) resolves, then fires again while its
    incident is in its quiet period (or resolved, within the reopen window); the other route's
    notification arrives first. It re-fires (or reopens) its incident: no second incident, no
    second page."""
    p = pipeline(engine)
    team_a, team_b = '{}:{team="a"}', '{}:{team="b"}'
    (opened,) = await p.process_alerts([alert(instance="a", group=team_a)])
    assert await p.process_alerts([alert(instance="a", group=team_b)]) == []
    await p.process_alerts(
        [alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1), group=team_a)]
    )
    if closed:
        (resolved,) = await p.expire_quiet(T0 + timedelta(minutes=6))
        assert resolved.type is EventType.RESOLVED
    refire = T0 + timedelta(minutes=10 if closed else 3)
    events = await p.process_alerts([alert(instance="a", at=refire, group=team_b)])
    expected = [EventType.REOPENED, EventType.ALERT_REFIRED] if closed else [EventType.ALERT_REFIRED]
    assert [(e.type, e.incident_id) for e in events] == [(t, opened.incident_id) for t in expected]
    assert await p.process_alerts([alert(instance="a", at=refire, group=team_a)]) == []
    assert [i.id for i in await p.store.list_incidents()] == [opened.incident_id]
    incident = await p.store.get(opened.incident_id)
    assert incident is not None
    assert (incident.state, incident.alerts_firing) == (IncidentState.TRIGGERED, 1)


async def test_a_late_unknown_resolution_does_not_restart_the_quiet_period(engine) -> None:  # type: ignore[no-untyped-def]
    """The resolution of an alert the incident never saw firing is recorded, but the quiet period
    still runs from the last firing alert's resolution."""
    p = pipeline(engine)
    (opened,) = await p.process_alerts([alert(instance="a")])
    await p.process_alerts([alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))])
    unseen = alert(instance="b", status="resolved", at=T0 + timedelta(minutes=4))
    (recorded,) = await p.process_alerts([unseen])
    assert (recorded.type, recorded.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert recorded.incident.alerts_firing == 0
    (closed,) = await p.expire_quiet(T0 + timedelta(minutes=6))
    assert (closed.type, closed.incident_id) == (EventType.RESOLVED, opened.incident_id)


async def test_a_resolution_sent_again_in_another_group_joins_no_incident(engine) -> None:  # type: ignore[no-untyped-def]
    """An alert already resolved in its incident and sent resolved again under another group
    (a route with ``continue: true``, an HA peer's late copy) is not counted in that group's
    open incident, and stays in its own."""
    p = pipeline(engine)
    team_a, team_b = '{}:{team="a"}', '{}:{team="b"}'
    (opened,) = await p.process_alerts([alert(instance="a", group=team_a)])
    (other,) = await p.process_alerts([alert("Other", instance="z", group=team_b)])
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1), group=team_a)
    await p.process_alerts([resolution])
    again = resolution.model_copy(
        update={"group_key": team_b, "received_at": T0 + timedelta(minutes=1, seconds=15)}
    )
    assert await p.process_alerts([again]) == []
    incident_b = await p.store.get(other.incident_id)
    assert incident_b is not None
    assert (incident_b.alerts_total, incident_b.alerts_firing) == (1, 1)
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(alerts).where(alerts.c.fingerprint == resolution.fingerprint)))
            .mappings()
            .one()
        )
    assert row["incident_id"] == opened.incident_id


async def test_a_resolution_taken_by_a_replica_with_a_slower_clock_resolves(engine) -> None:  # type: ignore[no-untyped-def]
    """Receiver replicas stamp ``received_at`` with their own clocks; the offset on the alert's
    partition orders its records. The stored position survives the transaction, and a replayed
    batch changes nothing."""
    from models.alert import RecordPosition

    p = pipeline(engine)
    fired = alert(instance="a").model_copy(update={"received_at": T0 + timedelta(minutes=10)})
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))
    (opened,) = await p.process_alerts([fired], [RecordPosition(2, 7)])
    (resolved,) = await p.process_alerts([resolution], [RecordPosition(2, 8)])
    assert (resolved.type, resolved.incident_id) == (EventType.ALERT_RESOLVED, opened.incident_id)
    assert resolved.incident.alerts_firing == 0
    async with engine.connect() as conn:
        row = (await conn.execute(select(alerts))).mappings().one()
    assert (row["status"], row["kafka_partition"], row["kafka_offset"]) == ("resolved", 2, 8)
    replay = [fired, resolution]
    assert await p.process_alerts(replay, [RecordPosition(2, 7), RecordPosition(2, 8)]) == []
    with pytest.raises(ValueError, match="2 records but 1 positions"):
        await p.process_alerts(replay, [RecordPosition(2, 7)])


async def test_a_command_names_its_episode_and_host_clocks_do_not_decide(engine) -> None:  # type: ignore[no-untyped-def]
    """A command issued for the incident's first episode, applied after it reopened, is refused
    even when the host that stamped it runs ahead; one issued for the current episode applies
    even when its host runs behind."""
    p = pipeline(engine)
    (opened,) = await p.process_alerts([alert(instance="a")])
    await p.process_alerts([alert(instance="a", status="resolved", at=T0 + timedelta(minutes=2))])
    await p.expire_quiet(T0 + timedelta(minutes=7))
    reopening = await p.process_alerts([alert(instance="a", at=T0 + timedelta(minutes=20))])
    assert reopening[0].incident.flaps == 1
    ahead = command(opened.incident_id, "resolve", at=T0 + timedelta(hours=1), command_id="old")
    result = await p.process_command(ahead.model_copy(update={"episode": 0}))
    assert not result.applied
    assert result.reason == "issued for episode 0; the incident reopened since (episode 1)"
    later = command(opened.incident_id, "acknowledge", at=T0 + timedelta(hours=1), command_id="later")
    result = await p.process_command(later.model_copy(update={"episode": 2}))
    assert not result.applied
    assert result.reason == "issued for episode 2, which the incident has not reached (episode 1)"
    behind = command(opened.incident_id, "resolve", at=T0 + timedelta(minutes=10), command_id="new")
    assert (await p.process_command(behind.model_copy(update={"episode": 1}))).applied
    incident = await p.store.get(opened.incident_id)
    assert incident is not None
    assert incident.state is IncidentState.RESOLVED
