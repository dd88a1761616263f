"""A week-in-the-life scenario of incidents, built through the real pipeline, shared by the
analytics, operator CLI and Incident API tests (and checked here, so a change to the lifecycle
that would silently change every figure below fails in one obvious place).

| incident        | SEV  | what happens (minutes after it opened)                                  |
|-----------------|------|--------------------------------------------------------------------------|
| HighErrorRate   | SEV2 | ack 10 (alice, slack), resolved by hand 40 (alice, cli)                   |
| CheckoutDown    | SEV1 | ack 20 (bob, pagerduty: target 15 missed), alert resolves 30, quiet → 36 |
| HighLatency     | SEV3 | never acked; alert resolves 10, quiet → resolved 16 (met by resolution)  |
| UIGlitch        | SEV4 | open, never acknowledged                                                 |
| QueueBacklog    | SEV3 | ack 5, resolve 15, fires again 20 (reopened), ack 25, resolve 30         |
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import Actor, EventType, IncidentEvent, IncidentState
from models.incident import Command, LifecyclePolicy
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert

POLICY = LifecyclePolicy(quiet_period=timedelta(minutes=5), reopen_window=timedelta(hours=1))
#: When the report is made: a day after the last incident opened.
NOW = T0 + timedelta(hours=4, days=1)


@dataclass
class Scenario:
    events: list[IncidentEvent]
    ids: dict[str, str]  # alertname -> incident id


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def _command(incident_id: str, action: str, at: datetime, who: str, via: str) -> Command:
    return Command(
        command_id=f"{incident_id}-{action}-{at.isoformat()}",
        action=action,  # type: ignore[arg-type]
        incident_id=incident_id,
        actor=Actor(via=via, name=who),
        requested_at=at,
    )


async def build_scenario(engine: AsyncEngine) -> Scenario:
    """Run the scenario through :class:`Pipeline` on ``engine``; returns every event emitted."""
    p = Pipeline(IncidentStore(engine), load_rules(None), POLICY)
    events: list[IncidentEvent] = []
    ids: dict[str, str] = {}

    async def fire(name: str, at: datetime, status: str = "firing", **labels: str) -> None:
        got = await p.process_alerts([alert(name, status=status, at=at, **labels)])
        events.extend(got)
        for event in got:
            ids.setdefault(name, event.incident_id)

    async def do(name: str, action: str, at: datetime, who: str = "alice", via: str = "cli") -> None:
        result = await p.process_command(_command(ids[name], action, at, who, via))
        assert result.applied, result.reason
        events.extend(result.events)

    t = T0
    await fire("HighErrorRate", t, severity="critical", service="api", instance="api-1")
    await do("HighErrorRate", "acknowledge", t + minutes(10), via="slack")
    await do("HighErrorRate", "resolve", t + minutes(40))

    t = T0 + timedelta(hours=1)
    await fire("CheckoutDown", t, severity="critical", service="checkout", instance="co-1")
    await do("CheckoutDown", "acknowledge", t + minutes(20), who="bob", via="pagerduty")
    await fire("CheckoutDown", t + minutes(30), "resolved", severity="critical", service="checkout",
               instance="co-1")  # fmt: skip
    events.extend(await p.expire_quiet(t + minutes(36)))

    t = T0 + timedelta(hours=2)
    await fire("HighLatency", t, severity="warning", service="search", instance="s-1")
    await fire("HighLatency", t + minutes(10), "resolved", severity="warning", service="search",
               instance="s-1")  # fmt: skip
    events.extend(await p.expire_quiet(t + minutes(16)))

    t = T0 + timedelta(hours=3)
    await fire("UIGlitch", t, severity="info", service="web")

    t = T0 + timedelta(hours=4)
    await fire("QueueBacklog", t, severity="warning", service="queue", instance="q-1")
    await do("QueueBacklog", "acknowledge", t + minutes(5))
    await do("QueueBacklog", "resolve", t + minutes(15))
    await fire("QueueBacklog", t + minutes(16), "resolved", severity="warning", service="queue",
               instance="q-1")  # fmt: skip
    await fire("QueueBacklog", t + minutes(20), severity="warning", service="queue", instance="q-1")
    await do("QueueBacklog", "acknowledge", t + minutes(25))
    await do("QueueBacklog", "resolve", t + minutes(30))
    return Scenario(events, ids)


async def test_scenario_builds_the_incidents_the_docstring_describes(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    store = IncidentStore(engine)
    severities = {}
    states = {}
    for name, incident_id in scenario.ids.items():
        incident = await store.get(incident_id)
        assert incident is not None
        severities[name] = incident.severity.value
        states[name] = incident.state
    assert severities == {
        "HighErrorRate": "SEV2",
        "CheckoutDown": "SEV1",
        "HighLatency": "SEV3",
        "UIGlitch": "SEV4",
        "QueueBacklog": "SEV3",
    }
    assert states["UIGlitch"] is IncidentState.TRIGGERED
    assert all(s is IncidentState.RESOLVED for n, s in states.items() if n != "UIGlitch")
    backlog = [e.type for e in scenario.events if e.incident_id == scenario.ids["QueueBacklog"]]
    assert EventType.REOPENED in backlog
    # every emitted event is stored exactly once, in the timeline
    stored = [e for i in scenario.ids.values() for e in await store.timeline(i)]
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in scenario.events)
    assert NOW.tzinfo is UTC


def scenario_store(url: str) -> Scenario:
    """A fresh store at ``url`` (SQLite or PostgreSQL) holding the scenario, for tests that read it
    from another process or through another client (the CLI)."""
    from store.db import async_engine
    from testkit.store_backends import fresh_database

    fresh_database(url)

    async def populate() -> Scenario:
        engine = async_engine(url)
        try:
            return await build_scenario(engine)
        finally:
            await engine.dispose()

    return asyncio.run(populate())
