"""The escalation loop over the real store (SQLite here; the PostgreSQL parameter is integration).

Time is fast-forwarded: every run is given its ``now``. A "worker" is an engine of its own; killing
one is disposing its engine mid-escalation.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import (
    EscalationLevel,
    EscalationStatus,
    Target,
    playbook_policy,
)
from models.events import Actor, EventType, IncidentEvent
from models.incident import Command, LifecyclePolicy
from models.severity import Severity
from store.db import async_engine
from store.escalation_schema import escalation_log
from store.escalations import EscalationRepo, StaleEscalation, escalation_transaction
from store.incidents import IncidentStore
from store.leases import Lease
from streams.escalation import EscalationMetrics, load_policy, run_escalations
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert, command

M = timedelta(minutes=1)
POLICY = playbook_policy()


def pipeline(engine: AsyncEngine) -> Pipeline:
    return Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())


async def open_incident(engine: AsyncEngine, name: str = "ApiDown", **labels: Any) -> str:
    labels.setdefault("severity", "sev1")
    events = await pipeline(engine).process_alerts([alert(name, service="api", **labels)])
    assert events[0].type is EventType.OPENED
    return events[0].incident_id


def escalated(events: list[IncidentEvent]) -> list[tuple[str, str]]:
    return [(e.data["level"], e.data["level_name"]) for e in events if e.type is EventType.ESCALATED]


async def timeline_types(engine: AsyncEngine, incident_id: str) -> list[str]:
    return [e.type.value for e in await IncidentStore(engine).timeline(incident_id)]


async def test_each_level_fires_on_time_with_its_targets_into_the_outbox(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    metrics = EscalationMetrics()

    first = await run_escalations(store, POLICY, T0, metrics=metrics)
    assert escalated(first) == [("1", "primary on-call")]
    assert json.loads(first[0].data["targets"]) == [
        {"kind": "pagerduty", "to": "primary", "label": "Primary On-Call"}
    ]
    assert first[0].actor.via == "sevflow"
    assert await run_escalations(store, POLICY, T0 + 14 * M) == []

    at_15 = await run_escalations(store, POLICY, T0 + 15 * M, metrics=metrics)
    assert escalated(at_15) == [("2", "secondary on-call")]
    assert [e.type for e in at_15] == [EventType.ESCALATED, EventType.SLA_BREACHED]
    assert at_15[1].data["kind"] == "acknowledge"

    assert await run_escalations(store, POLICY, T0 + 44 * M) == []
    at_45 = await run_escalations(store, POLICY, T0 + 45 * M, metrics=metrics)
    assert escalated(at_45) == [
        ("3", "primary and secondary on-call again"),
        ("4", "engineering manager"),
    ]
    assert at_45[0].data["again"] == "1"
    assert at_45[1].data["by_hand"] == "1"  # SEV1: the channel is asked to escalate by hand
    assert json.loads(at_45[1].data["targets"])[0]["kind"] == "phone"
    assert await run_escalations(store, POLICY, T0 + 5 * 60 * M) == []

    # The events are in the incident's timeline (the outbox), numbered after `opened`.
    assert await timeline_types(engine, incident_id) == [
        "opened",
        "escalated",
        "escalated",
        "sla_breached",
        "escalated",
        "escalated",
    ]
    incident = await store.get(incident_id)
    assert incident is not None
    assert incident.state.value == "triggered"  # annotations never change the state
    assert metrics.escalations.labels("2")._value.get() == 1
    assert metrics.sla_breaches.labels("SEV1", "acknowledge")._value.get() == 1
    history = await EscalationRepo(engine).history(incident_id)
    assert [h.step for h in history] == [
        "level:1",
        "level:2",
        "sla:acknowledge",
        "level:3",
        "level:4",
    ]


async def test_ack_before_the_deadline_stops_escalation(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    metrics = EscalationMetrics()
    await run_escalations(store, POLICY, T0)
    result = await pipeline(engine).process_command(command(incident_id, at=T0 + 10 * M))
    assert result.applied

    assert await run_escalations(store, POLICY, T0 + 10 * M + 1 * M, metrics=metrics) == []
    assert await run_escalations(store, POLICY, T0 + 2 * 60 * M) == []
    assert await timeline_types(engine, incident_id) == ["opened", "escalated", "acknowledged"]
    state = await EscalationRepo(engine).get(incident_id)
    assert state is not None
    assert state.status is EscalationStatus.ACKNOWLEDGED
    assert state.time_to_acknowledge == 10 * M
    assert metrics.time_to_acknowledge.labels("SEV1")._sum.get() == 600
    assert await EscalationRepo(engine).pending() == []


async def test_worker_killed_after_arming_fires_once_after_restart(database_url: str) -> None:
    first_worker = async_engine(database_url)
    incident_id = await open_incident(first_worker)
    await run_escalations(IncidentStore(first_worker), POLICY, T0)  # armed, level 1 fired
    await first_worker.dispose()  # killed before the 15-minute deadline

    restarted = async_engine(database_url)
    try:
        store = IncidentStore(restarted)
        late = await run_escalations(store, POLICY, T0 + 20 * M)
        assert escalated(late) == [("2", "secondary on-call")]
        assert await run_escalations(store, POLICY, T0 + 21 * M) == []
        assert (await timeline_types(restarted, incident_id)).count("escalated") == 2
    finally:
        await restarted.dispose()


async def test_never_armed_before_a_long_outage_fires_each_level_once(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine)
    events = await run_escalations(IncidentStore(engine), POLICY, T0 + 45 * M)
    assert [lv for lv, _ in escalated(events)] == ["1", "2", "3", "4"]
    assert await run_escalations(IncidentStore(engine), POLICY, T0 + 46 * M) == []
    assert (await timeline_types(engine, incident_id)).count("sla_breached") == 1


async def test_two_workers_at_once_never_fire_twice(database_url: str) -> None:
    workers = [async_engine(database_url) for _ in range(3)]
    try:
        ids = [await open_incident(workers[0], f"Svc{n}Down") for n in range(4)]
        for now in (T0, T0 + 16 * M, T0 + 46 * M):
            await asyncio.gather(
                *(run_escalations(IncidentStore(w), POLICY, now) for w in workers for _ in range(2))
            )
        for incident_id in ids:
            types = await timeline_types(workers[0], incident_id)
            assert types.count("escalated") == 4, types
            assert types.count("sla_breached") == 1, types
        async with workers[0].connect() as conn:
            logged = (await conn.execute(select(func.count()).select_from(escalation_log))).scalar_one()
        assert logged == 4 * 5
    finally:
        for w in workers:
            await w.dispose()


async def test_a_stale_run_writes_nothing(engine: AsyncEngine) -> None:
    """A run that read the escalation before another run advanced it loses the compare-and-set."""
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    await run_escalations(store, POLICY, T0)
    stale = await EscalationRepo(engine).get(incident_id)
    assert stale is not None
    await run_escalations(store, POLICY, T0 + 15 * M)
    caught = None
    try:
        async with escalation_transaction(engine) as (tx, etx):
            await tx.lock_incident(incident_id)
            await etx.save(stale, stale.version, T0 + 15 * M)
    except StaleEscalation as exc:
        caught = exc
    assert caught is not None
    current = await EscalationRepo(engine).get(incident_id)
    assert current is not None
    assert current.next_step == 2


async def test_a_lease_keeps_a_second_worker_idle(engine: AsyncEngine) -> None:
    await open_incident(engine)
    store = IncidentStore(engine)
    holder_a = Lease(engine, "escalations", "a", timedelta(hours=1))
    holder_b = Lease(engine, "escalations", "b", timedelta(hours=1))
    assert len(await run_escalations(store, POLICY, T0, lease=holder_a)) == 1
    assert await run_escalations(store, POLICY, T0 + 16 * M, lease=holder_b) == []
    assert escalated(await run_escalations(store, POLICY, T0 + 16 * M, lease=holder_a)) == [
        ("2", "secondary on-call")
    ]


async def test_policy_edits_do_not_change_a_running_escalation(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    await run_escalations(store, POLICY, T0)  # armed with the playbook: secondary after 15m
    edited = POLICY.model_copy(
        update={
            "levels": (
                POLICY.levels[0],
                EscalationLevel(
                    name="someone else",
                    after=5 * M,
                    targets=(Target(kind="slack", to="@someone"),),
                ),
            )
        }
    )
    assert await run_escalations(store, edited, T0 + 6 * M) == []
    later = await run_escalations(store, edited, T0 + 15 * M)
    assert escalated(later) == [("2", "secondary on-call")]
    # A new incident is armed with the edited policy.
    other = await open_incident(engine, "WebDown")
    fresh = await run_escalations(store, edited, T0 + 16 * M)
    assert ("2", "someone else") in escalated([e for e in fresh if e.incident_id == other])
    assert incident_id != other


async def test_security_incident_notifies_the_security_contact(engine: AsyncEngine) -> None:
    await open_incident(engine, "BreachDetected", security="true")
    events = await run_escalations(IncidentStore(engine), POLICY, T0)
    (level1,) = [e for e in events if e.type is EventType.ESCALATED]
    assert {t["to"] for t in json.loads(level1.data["targets"])} == {
        "primary",
        "security@optimal-build.com",
        "#security-incidents",
    }


async def test_the_loop_says_whether_the_security_contact_is_emailed(engine: AsyncEngine) -> None:
    """The worker's SMTP setting reaches the reason (load_policy(emailing=...) as the app does).
    Acknowledged before the loop first ran: the contact is told on its own."""
    incident_id = await open_incident(engine, "BreachDetected", security="true")
    result = await pipeline(engine).process_command(command(incident_id, at=T0 + M))
    assert result.applied
    events = await run_escalations(IncidentStore(engine), load_policy(None, emailing=True), T0 + 2 * M)
    (contact,) = [e for e in events if e.type is EventType.ESCALATED]
    assert contact.reason == (
        "security incident: security contact told in #security-incidents; "
        "emailed security@optimal-build.com"
    )


async def test_reopened_incident_escalates_again_under_a_new_id(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    flow = pipeline(engine)
    await run_escalations(store, POLICY, T0)
    await flow.process_command(command(incident_id, "resolve", at=T0 + 5 * M))
    await run_escalations(store, POLICY, T0 + 6 * M)
    refire = alert("ApiDown", service="api", severity="sev1", instance="b", at=T0 + 10 * M)
    reopened = await flow.process_alerts([refire])
    assert reopened[0].type is EventType.REOPENED
    events = await run_escalations(store, POLICY, T0 + 11 * M)
    assert escalated(events) == [("1", "primary on-call")]
    assert events[0].data["escalation_id"] == f"{incident_id}#1"
    assert escalated(await run_escalations(store, POLICY, T0 + 26 * M)) == [("2", "secondary on-call")]


async def test_pending_shows_what_fires_next_and_when(engine: AsyncEngine) -> None:
    from sevflow.commands.escalate import format_history, format_pending

    incident_id = await open_incident(engine, "ApiDown", severity="sev2")
    await run_escalations(IncidentStore(engine), POLICY, T0)
    repo = EscalationRepo(engine)
    (pending,) = await repo.pending()
    assert pending.state.severity is Severity.SEV2
    assert pending.state.next_level_at == T0 + 15 * M
    text = format_pending([pending], T0 + 5 * M)
    assert incident_id in text
    assert "level 2 secondary on-call → Secondary On-Call at 2026-11-27 12:15:00Z (in 10m)" in text
    assert "acknowledge due: 2026-11-27 12:30:00Z (in 25m)" in text
    detail = format_history(await repo.get(incident_id), await repo.history(incident_id), T0)
    assert "fired 12:00:00Z level:1: notifying primary on-call → Primary On-Call" in detail
    assert format_pending([], T0) == "no pending escalations"


async def test_answered_before_the_loop_ever_ran_records_the_late_ack_once(engine: AsyncEngine) -> None:
    incident_id = await open_incident(engine, "ApiDown", severity="sev2")
    await pipeline(engine).process_command(command(incident_id, at=T0 + 40 * M))
    events = await run_escalations(IncidentStore(engine), POLICY, T0 + 50 * M)
    assert [(e.type, e.data.get("kind")) for e in events] == [(EventType.SLA_BREACHED, "acknowledge")]
    assert "answered after 40m" in (events[0].reason or "")
    assert await run_escalations(IncidentStore(engine), POLICY, T0 + 55 * M) == []
    state = await EscalationRepo(engine).get(incident_id)
    assert state is not None
    assert state.status is EscalationStatus.ACKNOWLEDGED
    assert state.time_to_acknowledge == 40 * M


async def test_a_batch_that_opens_and_reopens_an_incident_arms_it_once(engine: AsyncEngine) -> None:
    """With no quiet period, one batch can open, resolve and reopen an incident: its escalation is
    armed once (arming it for each opening inserted the escalation twice, and the batch failed on
    every retry)."""
    policy = LifecyclePolicy(quiet_period=timedelta(0))
    armed = Pipeline(IncidentStore(engine), load_rules(None), policy, escalation=POLICY)
    batch = [
        alert(instance="a"),
        alert(instance="a", status="resolved", at=T0 + M),
        alert(instance="a", at=T0 + 2 * M),
    ]
    events = await armed.process_alerts(batch)
    kinds = [e.type for e in events]
    assert kinds[0] is EventType.OPENED
    assert EventType.REOPENED in kinds
    assert kinds.count(EventType.ESCALATED) == 1
    state = await EscalationRepo(engine).get(events[0].incident_id)
    assert state is not None
    assert state.status is EscalationStatus.ACTIVE
    assert await armed.process_alerts(batch) == []


async def test_an_opening_batch_notifies_the_first_level_in_its_own_transaction(
    engine: AsyncEngine,
) -> None:
    """With the policy, the pipeline arms incidents as they open: the primary is notified with the
    opening (same commit), and the loop later fires only what falls due."""
    armed = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy(), escalation=POLICY)
    batch = [alert(f"Svc{n}Down", severity="sev1", service=f"svc{n}") for n in range(3)]
    events = await armed.process_alerts(batch)
    assert [e.type for e in events] == [EventType.OPENED] * 3 + [EventType.ESCALATED] * 3
    assert escalated(events) == [("1", "primary on-call")] * 3
    assert await armed.process_alerts(batch) == []  # a replayed batch arms nothing twice

    store = IncidentStore(engine)
    assert await run_escalations(store, POLICY, T0 + M) == []
    at_15 = await run_escalations(store, POLICY, T0 + 15 * M)
    assert escalated(at_15) == [("2", "secondary on-call")] * 3
    for event in events[:3]:
        assert await timeline_types(engine, event.incident_id) == [
            "opened",
            "escalated",
            "escalated",
            "sla_breached",
        ]
        history = await EscalationRepo(engine).history(event.incident_id)
        assert [h.step for h in history] == ["level:1", "level:2", "sla:acknowledge"]


async def test_an_incident_is_armed_on_the_workers_clock_not_a_skewed_receivers(
    engine: AsyncEngine,
) -> None:
    """A SEV1 opened at T0 shared its batch with a record of a receiver 50 minutes ahead: armed at
    the batch's newest record time, every level (and the SLA breach) fired at once."""
    armed = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy(), escalation=POLICY)
    batch = [
        alert("CheckoutDown", severity="sev1", service="checkout"),
        alert("Other", severity="warning", at=T0 + 50 * M),
    ]
    events = await armed.process_alerts(batch, applied_at=T0)
    assert escalated(events) == [("1", "primary on-call")]
    assert EventType.SLA_BREACHED not in [e.type for e in events]
    assert escalated(await run_escalations(IncidentStore(engine), POLICY, T0 + 15 * M)) == [
        ("2", "secondary on-call")
    ]


async def test_a_sev4_pages_nobody_and_is_listed_the_next_business_morning(engine: AsyncEngine) -> None:
    """T0 is a Friday: the SEV4 waits, unpaged, over the weekend; the loop's scan finds it due on
    Monday at the opening of business (the playbook calendar: 09:00 UTC) and lists it once."""
    incident_id = await open_incident(engine, "TypoOnPricingPage", severity="sev4")
    store = IncidentStore(engine)
    assert await run_escalations(store, POLICY, T0) == []
    assert await run_escalations(store, POLICY, T0 + 2 * 24 * 60 * M) == []  # Sunday
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    listed = await run_escalations(store, POLICY, monday)
    assert [(e.type, e.data["level"], e.data["digest_day"]) for e in listed] == [
        (EventType.ESCALATED, "digest", "2026-11-30")
    ]
    assert await run_escalations(store, POLICY, monday + 60 * M) == []
    assert await timeline_types(engine, incident_id) == ["opened", "escalated"]


def to_manager(incident_id: str, command_id: str, at: datetime, episode: int | None = 0) -> Command:
    return Command(
        command_id=command_id,
        action="escalate",
        to="manager",
        incident_id=incident_id,
        actor=Actor(via="slack", name="alice"),
        requested_at=at,
        episode=episode,
    )


async def test_the_manager_is_escalated_to_by_hand_once_per_episode(engine: AsyncEngine) -> None:
    """The playbook's "Manual escalation for SEV1": the command names the manager; the worker
    writes one ``escalated`` event naming the policy's manager, audits it, and a second press
    (another command id) or a replay of the first changes nothing; a press meant for an earlier
    episode is refused."""
    incident_id = await open_incident(engine)
    store = IncidentStore(engine)
    await run_escalations(store, POLICY, T0)  # armed: the snapshot names the manager
    work = pipeline(engine)

    first = await work.process_command(to_manager(incident_id, "slack:1", T0 + 20 * M))
    assert first.applied
    (event,) = first.events
    assert event.type is EventType.ESCALATED
    assert event.actor.name == "alice"
    assert event.data["level"] == "manager"
    assert json.loads(event.data["targets"]) == [
        {"kind": "phone", "to": "engineering-manager", "label": "Engineering Manager"}
    ]
    replay = await work.process_command(to_manager(incident_id, "slack:1", T0 + 20 * M))
    assert (replay.applied, replay.reason) == (False, "command already applied")
    second = await work.process_command(to_manager(incident_id, "api:2", T0 + 21 * M))
    assert not second.applied
    assert "already" in second.reason
    assert await timeline_types(engine, incident_id) == ["opened", "escalated", "escalated"]
    history = await EscalationRepo(engine).history(incident_id)
    assert [h.step for h in history] == ["level:1", "manual:manager"]
    # The loop goes on as before: the manager asked for by hand at 45 minutes is still asked.
    assert escalated(await run_escalations(store, POLICY, T0 + 45 * M))[-1] == (
        "4",
        "engineering manager",
    )


async def test_an_escalation_by_hand_of_a_resolved_incident_is_refused(
    engine: AsyncEngine,
) -> None:
    incident_id = await open_incident(engine)
    work = pipeline(engine)
    assert (await work.process_command(command(incident_id, "resolve", at=T0 + M))).applied
    late = await work.process_command(to_manager(incident_id, "cli:1", T0 + 2 * M))
    assert not late.applied
    assert "resolved" in late.reason
    assert await timeline_types(engine, incident_id) == ["opened", "resolved"]
