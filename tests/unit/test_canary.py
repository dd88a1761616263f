"""The end-to-end canary: posted through the real receiver, classified by the shipped rules, an
incident that pages nobody, sent by the PagerDuty sink to its own routing key at severity info,
left out of Slack, the status page and the report, and its delivery exported for the stale rule.

The sinks run against the contract-enforcing fakes, with the delivery log on SQLite (and
PostgreSQL, marked integration, through the ``engine`` fixture); time is a fake clock."""

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.figures import ResponseTargets, compute_report
from analytics.incident_times import times_of
from models.alert import AlertRecord
from models.canary import CANARY_ROUND_LABEL, is_canary
from models.escalation import advance, arm, playbook_policy
from models.events import EventType, IncidentState
from models.incident import Incident, LifecyclePolicy, apply_alert
from models.severity import Severity
from receiver.app import create_app
from receiver.auth import WebhookAuth
from receiver.canary import Canary, canary_authorization, loopback_url
from sinks.metrics import SinkCollector
from sinks.pagerduty import PagerDutySink
from store.status_page import StatusPageStore
from streams.pipeline import regroup
from streams.rules import load_rules
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import ROUTING_KEY, records, sink_named, sink_settings, worker_for
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack

clock = fixtures.clock
fake_pagerduty = fixtures.fake_pagerduty
fake_slack = fixtures.fake_slack
tls_cert = fixtures.tls_cert

TOKEN = "canary-test-token-0123456789"
CANARY_KEY = "CANARYKEY0123456789abcdefABCDEF0"  # 32 characters, like a real integration key
CANARY = {"sevflow_canary": "true"}


class RecordingPublisher:
    """Stands in for Kafka at the receiver's boundary: keeps what was published."""

    def __init__(self) -> None:
        self.records: list[AlertRecord] = []

    async def publish(self, records: Sequence[AlertRecord]) -> None:
        self.records.extend(records)

    def note_unanswered(self, records: Sequence[AlertRecord]) -> None:
        pass

    async def ready(self) -> bool:
        return True


def canary_for(
    publisher: RecordingPublisher, clock: FakeClock, token: str = TOKEN
) -> tuple[Canary, httpx.AsyncClient]:
    app = create_app(publisher=publisher, auth=WebhookAuth([SecretStr(TOKEN)]), now=clock.now)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    canary = Canary(
        url=loopback_url("0.0.0.0", 8080),
        authorization=canary_authorization([SecretStr(token)], []),
        interval=300,
        resolve_after=30,
        clock=clock,
        client=client,
    )
    return canary, client


# --- the canary's rounds through the real receiver ----------------------------------------------


async def test_each_round_fires_then_resolves_a_new_alert_through_the_webhook(clock: FakeClock) -> None:
    publisher = RecordingPublisher()
    canary, client = canary_for(publisher, clock)
    async with client:
        await canary.round()
        clock.advance(270)
        await canary.round()
    first_fire, first_resolve, second_fire, second_resolve = publisher.records
    assert [r.status for r in publisher.records] == ["firing", "resolved", "firing", "resolved"]
    assert first_fire.labels["alertname"] == "SevflowCanary"
    assert all(is_canary(r.labels) and r.labels["severity"] == "info" for r in publisher.records)
    assert first_fire.fingerprint == first_resolve.fingerprint
    assert first_fire.fingerprint != second_fire.fingerprint  # a new alert each round
    assert first_fire.group_key != second_fire.group_key  # in a group of its own: a new incident
    assert first_resolve.ends_at == T0 + timedelta(seconds=30)  # resolved after resolve_after
    assert second_fire.starts_at == T0 + timedelta(seconds=300)
    assert second_resolve.labels[CANARY_ROUND_LABEL] == second_fire.labels[CANARY_ROUND_LABEL]
    assert clock.slept == [30, 30]
    assert canary.unresolved == {}


async def test_a_refused_canary_is_not_recorded_and_an_unresolved_round_is_retried(
    clock: FakeClock,
) -> None:
    publisher = RecordingPublisher()
    wrong, client = canary_for(publisher, clock, token="not-the-token")
    async with client:
        await wrong.round()  # the receiver's auth is exercised: 401, nothing reaches Kafka
    assert publisher.records == []

    canary, client = canary_for(publisher, clock)
    async with client:
        await canary.round()
        assert len(publisher.records) == 2
        # A resolution the receiver does not take (Kafka down: 503) is posted again next round.
        canary.unresolved["20260115T142500Z-earlier"] = T0 - timedelta(minutes=5)
        clock.advance(270)
        await canary.round()
    earlier = [r for r in publisher.records if r.labels[CANARY_ROUND_LABEL].endswith("-earlier")]
    assert [r.status for r in earlier] == ["resolved"]
    assert canary.unresolved == {}


def test_canary_credentials_and_address() -> None:
    assert canary_authorization([SecretStr("a"), SecretStr("b")], []) == "Bearer a"
    assert canary_authorization([], [SecretStr("user:pw")]) == "Basic dXNlcjpwdw=="
    assert canary_authorization([], []) is None
    assert loopback_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/webhooks/alertmanager"
    assert loopback_url("::", 8080) == "http://[::1]:8080/webhooks/alertmanager"
    assert loopback_url("10.0.0.5", 9) == "http://10.0.0.5:9/webhooks/alertmanager"


# --- the worker's side: rules, lifecycle, escalation ---------------------------------------------


async def test_shipped_rules_make_the_canary_sev4_an_incident_that_pages_nobody_and_closes_at_once(
    clock: FakeClock,
) -> None:
    publisher = RecordingPublisher()
    canary, client = canary_for(publisher, clock)
    async with client:
        await canary.round()
    firing, resolved = publisher.records
    rules = load_rules(None)
    cls = rules.classify(firing.labels, firing.annotations)
    assert (cls.severity, cls.rule) == (Severity.SEV4, "sevflow-canary")
    assert not (cls.security)
    assert not (cls.data_loss)
    assert not cls.data_breach

    policy = LifecyclePolicy()
    opened = apply_alert(None, None, firing, cls, policy, firing.received_at)
    assert opened is not None
    assert opened.incident is not None
    assert opened.alert is not None
    incident = opened.incident
    assert incident.canary
    assert opened.events[0].incident.canary

    # The playbook's policy pages the primary at once and has SLA targets: not for the canary.
    state = arm(incident, playbook_policy(), firing.received_at)
    later = advance(state, incident, firing.received_at + timedelta(days=3))
    assert later.firings == ()
    assert later.state.due_at is None  # nothing left to fire: the loop is done with it

    closed = apply_alert(incident, opened.alert, resolved, cls, policy, resolved.received_at)
    assert closed is not None
    assert closed.incident is not None
    assert closed.incident.state is IncidentState.RESOLVED  # no 15-minute quiet period
    assert [e.type for e in closed.events] == [EventType.ALERT_RESOLVED, EventType.RESOLVED]


def test_a_real_incident_still_escalates_and_waits_out_its_quiet_period() -> None:
    story = IncidentStory()
    story.fire()
    story.resolve_alert(at=T0 + timedelta(minutes=1))
    assert story.incident is not None
    assert not story.incident.canary
    assert story.incident.state is IncidentState.TRIGGERED
    state = arm(story.incident, playbook_policy(), T0)
    assert advance(state, story.incident, T0).firings  # the primary on-call is notified


def test_canary_alerts_keep_their_own_group_when_sevflow_regroups() -> None:
    record = AlertRecord(
        fingerprint="fp",
        status="firing",
        labels={"alertname": "SevflowCanary", **CANARY, CANARY_ROUND_LABEL: "r1"},
        starts_at=T0,
        receiver="sevflow-canary",
        group_key='{}/{sevflow_canary="true"}:{sevflow_canary_round="r1"}',
        received_at=T0,
    )
    assert regroup(record, ("alertname",)).group_key == record.group_key
    other = record.model_copy(update={"labels": {"alertname": "SevflowCanary"}})
    assert regroup(other, ("alertname",)).group_key == '{}:{alertname="SevflowCanary"}'


def test_reports_leave_canary_incidents_out() -> None:
    real, canary = IncidentStory(group="real"), IncidentStory(group="canary", labels=CANARY)
    real.fire()
    canary.fire(at=T0 + timedelta(seconds=1))
    canary.resolve_alert(at=T0 + timedelta(seconds=31))
    assert canary.incident is not None
    assert canary.incident.canary
    times = [times_of(s.events[-1].incident, s.events) for s in (real, canary)]
    report = compute_report(times, ResponseTargets(), T0 + timedelta(hours=1))
    assert report.overall.incidents == 1
    assert report.overall.resolved == 0  # the canary's 30-second resolution is not an MTTR


def test_incidents_stored_before_the_flag_read_as_not_canary() -> None:
    stored = Incident(
        id="inc_1", group_key="g", title="t", slug="t", severity=Severity.SEV2, opened_at=T0
    ).model_dump(exclude={"canary"})
    assert Incident.model_validate(stored).canary is False


# --- the sinks -----------------------------------------------------------------------------------


def canary_story() -> IncidentStory:
    return IncidentStory(name="SevflowCanary", severity=Severity.SEV4, group="canary", labels=CANARY)


async def test_pagerduty_sends_the_canary_to_its_own_key_at_info_and_exports_the_time(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    settings = sink_settings(
        pagerduty=fake_pagerduty,
        cert=tls_cert,
        canary_pagerduty_routing_key=CANARY_KEY,
        pagerduty_severities="SEV1",  # the canary is SEV4: it goes out anyway
    )
    sink = sink_named(settings, engine, clock, "pagerduty")
    assert isinstance(sink, PagerDutySink)
    worker, dead = worker_for(sink, clock)
    canary, real = canary_story(), IncidentStory(name="CheckoutDown", severity=Severity.SEV1, group="r")
    events = canary.fire() + real.fire() + canary.resolve_alert(at=T0 + timedelta(seconds=30))
    collector = SinkCollector([sink], "dlq", canary_interval=300, started_at=T0)
    registry = CollectorRegistry()
    registry.register(collector)
    assert registry.get_sample_value("sevflow_canary_last_delivered_timestamp_seconds") is None
    clock.advance(5)
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    canary_id, real_id = canary.events[0].incident_id, real.events[0].incident_id
    (canary_alert,) = [a for a in fake_pagerduty.alerts if a.dedup_key == canary_id]
    assert (canary_alert.routing_key, canary_alert.severity) == (CANARY_KEY, "info")
    assert canary_alert.status == "resolved"
    assert fake_pagerduty.actions(canary_id) == ["trigger", "resolve"]
    assert all(
        e["routing_key"] == CANARY_KEY for e in fake_pagerduty.events if e["dedup_key"] == canary_id
    )
    (real_alert,) = [a for a in fake_pagerduty.alerts if a.dedup_key == real_id]
    assert (real_alert.routing_key, real_alert.severity) == (ROUTING_KEY, "critical")
    assert sink.canary_delivered_at == T0 + timedelta(seconds=5)
    value = registry.get_sample_value
    assert (
        value("sevflow_canary_last_delivered_timestamp_seconds")
        == (T0 + timedelta(seconds=5)).timestamp()
    )
    assert value("sevflow_canary_interval_seconds") == 300
    assert value("sevflow_canary_watch_started_timestamp_seconds") == T0.timestamp()


async def test_without_its_key_the_canary_is_sent_nowhere(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert, pagerduty_severities="SEV1-SEV4")
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    story = canary_story()
    try:
        await worker.process(records(story.fire() + story.resolve_alert(at=T0 + timedelta(seconds=30))))
    finally:
        await sink.close()
    assert dead.letters == []
    assert fake_pagerduty.events == []  # never on the normal routing key


async def test_the_canary_is_not_in_a_storm_digest(
    engine: AsyncEngine, fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], clock: FakeClock
) -> None:
    settings = sink_settings(
        pagerduty=fake_pagerduty, cert=tls_cert, canary_pagerduty_routing_key=CANARY_KEY
    )
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock, threshold=2)
    storm = [IncidentStory(name=f"Warn{i}", severity=Severity.SEV3, group=f"w{i}") for i in range(5)]
    canary = canary_story()
    events = [e for s in storm for e in s.fire()] + canary.fire()
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    canary_id = canary.events[0].incident_id
    assert fake_pagerduty.actions(canary_id) == ["trigger"]
    assert [a.routing_key for a in fake_pagerduty.alerts if a.dedup_key == canary_id] == [CANARY_KEY]


async def test_slack_and_the_status_page_leave_the_canary_out(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    settings = sink_settings(
        slack=fake_slack, slack_severities="SEV1-SEV4", statuspage_severities="SEV1-SEV4"
    )
    story = canary_story()
    events = story.fire() + story.resolve_alert(at=T0 + timedelta(seconds=30))
    for name in ("slack", "statuspage"):
        sink = sink_named(settings, engine, clock, name)
        worker, dead = worker_for(sink, clock)
        try:
            await worker.process(records(events))
        finally:
            await sink.close()
        assert dead.letters == []
    assert fake_slack.calls == []
    assert await StatusPageStore(engine).get(story.events[0].incident_id) is None
    # The same story without the canary label is announced and published (the test can fail).
    real = IncidentStory(name="SevflowCanary", severity=Severity.SEV4, group="other")
    real_events = real.fire()
    for name in ("slack", "statuspage"):
        sink = sink_named(settings, engine, clock, name)
        worker, _ = worker_for(sink, clock)
        try:
            await worker.process(records(real_events))
        finally:
            await sink.close()
    assert fake_slack.calls
    assert await StatusPageStore(engine).get(real.events[0].incident_id) is not None


# --- settings --------------------------------------------------------------------------------------


def test_the_canary_needs_the_pagerduty_sink_and_is_off_without_its_key() -> None:
    from models.settings import Settings

    with pytest.raises(ValidationError, match="needs SEVFLOW_PAGERDUTY_ROUTING_KEY"):
        Settings(canary_pagerduty_routing_key=CANARY_KEY)
    assert not Settings().canary_enabled()
    on = Settings(pagerduty_routing_key=ROUTING_KEY, canary_pagerduty_routing_key=CANARY_KEY)
    assert on.canary_enabled()
    assert on.canary_interval_seconds == 300
    off = on.model_copy(update={"canary_interval_seconds": 0})
    assert not off.canary_enabled()
