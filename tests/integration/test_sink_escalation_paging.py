"""An escalation level with its own PagerDuty service is paged on that service, once, and its
alert is resolved with the incident; the incident's own alert is unaffected."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import PAGERDUTY_TARGET_MAX
from models.events import IncidentEvent
from models.pagerduty_keys import escalation_key
from models.severity import Severity
from sinks.base import Sink
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import ROUTING_KEY, sink_named, sink_settings
from testkit.fakes.pagerduty import FakePagerDuty

pytestmark = pytest.mark.integration

fake_pagerduty = fixtures.fake_pagerduty
tls_cert = fixtures.tls_cert
clock = fixtures.clock

SECONDARY_KEY = "S3C0NDARYKEY0123456789abcdefABCD"
TARGETS = [
    {"kind": "pagerduty", "to": "secondary", "label": "Secondary On-Call"},
    {"kind": "email", "to": "oncall@example.com"},
]


def escalating_sink(
    fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], engine: AsyncEngine, clock: FakeClock
) -> Sink:
    """The PagerDuty sink with the secondary on-call's own service routed."""
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        cert=tls_cert,
        escalation_pagerduty_routing_keys=f"secondary={SECONDARY_KEY}",
    )
    return sink_named(settings, engine, clock, "pagerduty")


def escalate(story: IncidentStory, minutes: int, reason: str, cycle: int = 0) -> list[IncidentEvent]:
    """Level 2 (the secondary) fires on ``story``'s incident, ``minutes`` after T0."""
    data = {"level": "2", "targets": json.dumps(TARGETS)}
    if cycle:
        data["cycle"] = str(cycle)
    return story.escalate(data, T0 + timedelta(minutes=minutes), reason)


async def test_escalation_pages_the_level_and_resolves_it(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    sink = escalating_sink(fake_pagerduty, tls_cert, engine, clock)
    story = IncidentStory()
    opened = story.fire()
    escalated = escalate(story, 15, "unacknowledged for 15 minutes")
    resolved = story.resolve()
    events = [*opened, *escalated, *resolved]

    try:
        assert await sink.handle(events) == []
        assert await sink.handle(events) == []  # redelivered: nothing twice
    finally:
        await sink.close()

    incident_id = opened[0].incident_id
    second = escalation_key(incident_id, "secondary")
    assert fake_pagerduty.actions(incident_id) == ["trigger", "resolve"]
    assert fake_pagerduty.actions(second) == ["trigger", "resolve"]
    (page,) = [
        e for e in fake_pagerduty.events if e["dedup_key"] == second and e["event_action"] == "trigger"
    ]
    assert page["routing_key"] == SECONDARY_KEY
    assert page["payload"]["summary"].startswith("Escalated to Secondary On-Call (level 2): ")
    assert {e["routing_key"] for e in fake_pagerduty.events if e["dedup_key"] == incident_id} == {
        ROUTING_KEY
    }
    assert SECONDARY_KEY not in json.dumps([e.model_dump(mode="json") for e in events])


async def test_a_repeat_of_the_path_pages_the_level_again(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """A policy with ``repeat``: the path runs again while nobody acknowledges. PagerDuty folds a
    trigger into an open alert of the same dedup_key without notifying anyone, so a repeat opens
    its own alert on the level's service; the acknowledgement reaches every one of them."""
    sink = escalating_sink(fake_pagerduty, tls_cert, engine, clock)
    story = IncidentStory()
    opened = story.fire()
    escalations = [
        *escalate(story, 15, "unacknowledged", cycle=0),
        *escalate(story, 45, "unacknowledged", cycle=1),
    ]
    acknowledged = story.ack(at=T0 + timedelta(minutes=50))
    try:
        assert await sink.handle([*opened, *escalations, *acknowledged]) == []
    finally:
        await sink.close()
    incident_id = opened[0].incident_id
    first, again = escalation_key(incident_id, "secondary"), escalation_key(incident_id, "secondary", 1)
    assert again == f"{incident_id}/escalation/secondary/repeat1"
    assert fake_pagerduty.actions(first) == ["trigger", "acknowledge"]
    assert fake_pagerduty.actions(again) == ["trigger", "acknowledge"]
    secondary = [a for a in fake_pagerduty.alerts if a.routing_key == SECONDARY_KEY]
    assert len(secondary) == 2  # two alerts: the repeat notified the secondary again


@pytest.mark.parametrize(
    "name",
    [
        "platform-infrastructure-secondary-oncall-eu",  # 43 characters
        "-".join(["platform-infrastructure-secondary-oncall"] * 5)[:PAGERDUTY_TARGET_MAX],
    ],
    ids=["43", "longest"],
)
async def test_a_long_target_name_is_paged_and_resolved_once(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
    name: str,
) -> None:
    """A PagerDuty target's name is part of the step the delivery log keeps (acknowledge,
    trigger, repeats) and of its ref (``escalation:<name>``). On PostgreSQL a name of 42
    characters or more overflowed the step column, and of about 45 the ref's: the sink failed
    after paging, and every redelivery paged again and failed again."""
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        cert=tls_cert,
        escalation_pagerduty_routing_keys=f"{name}={SECONDARY_KEY}",
    )
    sink = sink_named(settings, engine, clock, "pagerduty")
    story = IncidentStory()
    opened = story.fire()
    targets = json.dumps([{"kind": "pagerduty", "to": name}])
    escalated = story.escalate({"level": "2", "targets": targets}, T0 + timedelta(minutes=15), "late")
    events = [*opened, *escalated, *story.ack(T0 + timedelta(minutes=20))]
    try:
        assert await sink.handle(events) == []
        assert await sink.handle(events) == []  # redelivered: nothing twice
    finally:
        await sink.close()
    level = escalation_key(events[0].incident_id, name)
    assert fake_pagerduty.actions(level) == ["trigger", "acknowledge"]


async def test_a_severity_that_does_not_page_pages_no_escalation_level(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """``SEVFLOW_PAGERDUTY_SEVERITIES`` decides who is paged at all: a SEV4 (not in it) pages
    neither the primary (the incident's own alert) nor any escalation level, the secondary
    included; an escalation level is never the first page of an incident."""
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        cert=tls_cert,
        escalation_pagerduty_routing_keys=f"secondary={SECONDARY_KEY}",
        pagerduty_severities="SEV1,SEV2,SEV3",
    )
    sink = sink_named(settings, engine, clock, "pagerduty")
    story = IncidentStory(severity=Severity.SEV4)
    events = [*story.fire(), *escalate(story, 15, "unacknowledged for 15 minutes"), *story.resolve()]
    try:
        assert await sink.handle(events) == []
    finally:
        await sink.close()
    assert fake_pagerduty.events == []


async def test_both_paged_again_open_new_alerts_and_the_manager_by_hand_pages_nobody(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    """The default policy's 45-minute level pages primary and secondary *again*: new alerts (the
    primary's on the incident's own service, which has no escalation key), acknowledged with the
    incident; the SEV1 manager level asked for by hand pages nobody."""
    sink = escalating_sink(fake_pagerduty, tls_cert, engine, clock)
    story = IncidentStory(severity=Severity.SEV1)
    both = json.dumps([{"kind": "pagerduty", "to": "primary"}, {"kind": "pagerduty", "to": "secondary"}])
    manager = json.dumps([{"kind": "pagerduty", "to": "secondary"}])
    events = [
        *story.fire(),
        *escalate(story, 15, "unacknowledged for 15m"),
        *story.escalate(
            {"level": "3", "targets": both, "again": "1"}, T0 + timedelta(minutes=45), "again"
        ),
        *story.escalate(
            {"level": "4", "targets": manager, "by_hand": "1"}, T0 + timedelta(minutes=45), "by hand"
        ),
        *story.ack(at=T0 + timedelta(minutes=50)),
    ]
    try:
        assert await sink.handle(events) == []
        assert await sink.handle(events) == []  # redelivered: nothing twice
    finally:
        await sink.close()
    incident_id = events[0].incident_id
    primary_again = escalation_key(incident_id, "primary", again=True)
    secondary_again = escalation_key(incident_id, "secondary", again=True)
    assert fake_pagerduty.actions(incident_id) == ["trigger", "acknowledge"]
    assert fake_pagerduty.actions(escalation_key(incident_id, "secondary")) == ["trigger", "acknowledge"]
    assert fake_pagerduty.actions(primary_again) == ["trigger", "acknowledge"]
    assert fake_pagerduty.actions(secondary_again) == ["trigger", "acknowledge"]
    routing = {e["dedup_key"]: e["routing_key"] for e in fake_pagerduty.events}
    assert routing[primary_again] == ROUTING_KEY  # the incident's own service: the primary
    assert routing[secondary_again] == SECONDARY_KEY
    assert len({e["dedup_key"] for e in fake_pagerduty.events}) == 4  # by hand: no page
