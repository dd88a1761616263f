"""The console times response targets and the escalation still ahead by the escalation policy
(models/escalation/), not by hard-coded playbook figures."""

import asyncio
from datetime import time, timedelta
from pathlib import Path

from analytics.figures import ResponseTargets
from models.escalation import (
    BusinessCalendar,
    EscalationLevel,
    EscalationPolicy,
    EscalationStatus,
    Target,
    arm,
    playbook_policy,
)
from models.incident import Incident, LifecyclePolicy
from models.severity import Severity
from receiver.console.escalation_view import levels_ahead
from receiver.console.targets import response_clock
from store.db import async_engine, sync_engine
from store.incidents import IncidentStore
from store.schema import metadata
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert, command  # T0: a Friday, 12:00 UTC
from tests.unit.test_console import signed_in

_PAGER = Target(kind="pagerduty", to="primary", label="Primary")
_BOSS = Target(kind="phone", to="boss", label="Boss")


def _incident(severity: Severity) -> Incident:
    return Incident(id="inc_1", group_key="g", title="t", slug="t", severity=severity, opened_at=T0)


def _policy(**changes: object) -> EscalationPolicy:
    return playbook_policy().model_copy(update=changes)


def test_sev3_uses_the_policys_acknowledge_target() -> None:
    targets = ResponseTargets.of_policy(
        _policy(
            acknowledge_targets={
                **playbook_policy().acknowledge_targets,
                Severity.SEV3: timedelta(minutes=45),
            }
        )
    )
    clock = response_clock(_incident(Severity.SEV3), targets, T0 + timedelta(minutes=30))
    assert (clock.target_label, clock.remaining) == ("< 45 min", timedelta(minutes=15))
    playbook = response_clock(_incident(Severity.SEV3), ResponseTargets(), T0 + timedelta(minutes=30))
    assert (playbook.target_label, playbook.remaining) == ("< 2 hours", timedelta(minutes=90))


def test_sev4_next_business_day_follows_the_policys_business_hours() -> None:
    every_day = BusinessCalendar(days=(0, 1, 2, 3, 4, 5, 6), start=time(8), end=time(18))
    clock = response_clock(
        _incident(Severity.SEV4), ResponseTargets.of_policy(_policy(business_hours=every_day)), T0
    )
    assert clock.deadline == T0.replace(day=28, hour=18)  # Saturday is a business day here
    assert clock.target_label == "Next business day"
    weekdays = response_clock(_incident(Severity.SEV4), ResponseTargets(), T0)
    assert weekdays.deadline == T0.replace(day=30, hour=17)  # Monday's close


def test_escalation_ahead_lists_every_repeat_cycle_at_the_loops_moments() -> None:
    policy = EscalationPolicy(
        levels=(
            EscalationLevel(name="primary", after=timedelta(0), targets=(_PAGER,)),
            EscalationLevel(name="boss", after=timedelta(minutes=10), targets=(_BOSS,), by_hand=True),
        ),
        repeat=2,
        repeat_interval=timedelta(minutes=5),
    )
    state = arm(_incident(Severity.SEV2), policy, T0).model_copy(update={"next_step": 1})
    ahead = levels_ahead(state, T0 + timedelta(minutes=1))
    # A cycle is the last level's delay plus the interval: 15 min; steps 1..5 are still to fire.
    assert [(a.name, a.cycle, a.due - T0) for a in ahead] == [
        ("boss", 0, timedelta(minutes=10)),
        ("primary", 1, timedelta(minutes=15)),
        ("boss", 1, timedelta(minutes=25)),
        ("primary", 2, timedelta(minutes=30)),
        ("boss", 2, timedelta(minutes=40)),
    ]
    assert [a.due for a in ahead] == [state.plan.step_at(T0, s) for s in range(1, 6)]
    assert ahead[0].by_hand
    assert not ahead[1].by_hand
    assert not any(a.overdue for a in ahead)
    late = levels_ahead(state, T0 + timedelta(minutes=12))
    assert [a.overdue for a in late][:2] == [True, False]


def test_nothing_is_ahead_of_a_stopped_escalation() -> None:
    state = arm(_incident(Severity.SEV2), playbook_policy(), T0)
    assert levels_ahead(None, T0) == []
    assert levels_ahead(state.model_copy(update={"next_step": state.plan.steps}), T0) == []
    stopped = state.model_copy(update={"status": EscalationStatus.ACKNOWLEDGED})
    assert levels_ahead(stopped, T0) == []


async def _acknowledged_then_raised(url: str) -> str:
    """A SEV3 incident acknowledged after 20 minutes, then raised to SEV1 by a critical alert
    of its group at 30 minutes: its id."""
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    aengine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(aengine), load_rules(None), LifecyclePolicy())
        (opened,) = await pipeline.process_alerts([alert("Slow", severity="warning", group="g")])
        assert opened.incident.severity is Severity.SEV3
        await pipeline.process_command(command(opened.incident_id, at=T0 + timedelta(minutes=20)))
        critical = alert("Down", severity="critical", group="g", at=T0 + timedelta(minutes=30))
        changes = await pipeline.process_alerts([critical])
        assert changes[-1].incident.severity is Severity.SEV1
        return opened.incident_id
    finally:
        await aengine.dispose()


def test_the_console_judges_an_answer_by_the_severity_in_effect_at_it(tmp_path: Path) -> None:
    """The escalation engine and the report judge a SEV3 acknowledged after 20 minutes and
    raised to SEV1 afterwards as having met its target; the console's list and incident page
    judged it by SEV1's 15 minutes (BREACHED)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    incident_id = asyncio.run(_acknowledged_then_raised(url))
    with signed_in(async_engine(url), T0 + timedelta(hours=1)) as client:
        listed = client.get("/ui/incidents").text
        shown = client.get(f"/ui/incidents/{incident_id}").text
    for page in (listed, shown):
        assert "SEV1" in page
        assert 'class="target met">&lt; 2 hours' in page
        assert "BREACHED" not in page
