"""Verified resolution, pure and over the store: a failing probe keeps a quiet incident open and
starts its quiet period again; a pass after the quiet period started lets it resolve; a replay of
the same probe results reaches the same decisions."""

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from models.events import EventType, IncidentEvent, IncidentState
from models.incident import Classification, Incident, LifecyclePolicy, apply_alert, expire_quiet_period
from models.severity import Severity
from models.verification import ProbeResult, apply_probe_result, parse_probes
from store.db import async_engine
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.store_backends import fresh_database
from tests.builders import T0, alert

SEV2 = Classification(severity=Severity.SEV2, rule="high-error-rate")
QUIET = timedelta(minutes=5)
POLICY = LifecyclePolicy(quiet_period=QUIET)
PROBES = '[{"service": "api", "http_url": "https://api.example.com/health"}]'
PROBE = "GET https://api.example.com/health"


def quiet_incident() -> Incident:
    """An incident of service api whose only alert resolved at T0 + 1m (quiet since then)."""
    opened = apply_alert(None, None, alert(service="api"), SEV2, POLICY, T0)
    assert opened is not None
    assert opened.incident is not None
    record = alert(service="api", status="resolved", at=T0 + timedelta(minutes=1))
    resolved = apply_alert(
        opened.incident, opened.alert, record, SEV2, POLICY, record.received_at, verify=True
    )
    assert resolved is not None
    assert resolved.incident is not None
    return resolved.incident


def result(incident: Incident, ok: bool, at: datetime, detail: str = "") -> ProbeResult:
    return ProbeResult.of(incident.id, incident.flaps, PROBE, ok, detail, at)


def applied(incident: Incident, *results: ProbeResult) -> tuple[Incident, list[IncidentEvent]]:
    events: list[IncidentEvent] = []
    for r in results:
        outcome = apply_probe_result(incident, r, QUIET)
        if outcome is not None:
            assert outcome.incident is not None
            incident = outcome.incident
            events.extend(outcome.events)
    return incident, events


def test_probes_parse_by_service_and_refuse_what_cannot_run() -> None:
    probes = parse_probes(
        '[{"service": "api", "http_url": "http://10.0.0.5:8080/health"},'
        ' {"service": "db", "promql": "up == 1", "prometheus_url": "http://127.0.0.1:9090"}]'
    )
    assert probes.for_services(["web", "db", "api"]) is not None
    assert probes.for_services(["db"]).name == "PromQL up == 1"  # type: ignore[union-attr]
    assert probes.for_services(["web"]) is None
    assert not parse_probes("")
    for bad in (
        '[{"service": "api", "http_url": "http://api.example.com/health"}]',  # plain http, public
        '[{"service": "api", "promql": "up"}]',  # no Prometheus to ask
        '[{"service": "api"}]',  # nothing to check
        '[{"service": "api", "http_url": "file:///etc/passwd"}]',
    ):
        with pytest.raises((ValidationError, ValueError)):
            parse_probes(bad)


def test_without_a_probe_the_quiet_period_alone_resolves() -> None:
    incident = quiet_incident()
    outcome = expire_quiet_period(incident, POLICY, T0 + timedelta(minutes=6))
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.state is IncidentState.RESOLVED


def test_with_a_probe_the_quiet_period_needs_a_pass_in_it() -> None:
    incident = quiet_incident()
    assert expire_quiet_period(incident, POLICY, T0 + timedelta(minutes=30), verify=True) is None
    passed, events = applied(incident, result(incident, True, T0 + timedelta(minutes=2)))
    assert events == []  # a pass with no failure before it is nothing to announce
    assert expire_quiet_period(passed, POLICY, T0 + timedelta(minutes=5), verify=True) is None
    outcome = expire_quiet_period(passed, POLICY, T0 + timedelta(minutes=6), verify=True)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.state is IncidentState.RESOLVED
    assert "verification probe passed" in (outcome.events[0].reason or "")


def test_a_failure_keeps_the_incident_monitoring_and_restarts_the_quiet_period() -> None:
    incident = quiet_incident()
    failed_at = T0 + timedelta(minutes=4)
    watched, events = applied(
        incident,
        result(incident, True, T0 + timedelta(minutes=2)),
        result(incident, False, failed_at, "answered 503"),
        result(incident, False, failed_at + timedelta(minutes=1), "answered 503"),
    )
    assert [e.type for e in events] == [EventType.VERIFICATION_FAILED]  # said once, not per run
    assert events[0].reason == f"{PROBE}: answered 503"
    assert events[0].data == {"probe": PROBE, "detail": "answered 503", "watch": "5m"}
    assert events[0].incident.monitoring
    assert watched.monitoring
    assert watched.state is IncidentState.TRIGGERED
    assert watched.quiet_since == failed_at + timedelta(minutes=1)
    assert expire_quiet_period(watched, POLICY, T0 + timedelta(hours=1), verify=True) is None

    passed_at = failed_at + timedelta(minutes=2)
    recovered, events = applied(watched, result(watched, True, passed_at))
    assert [e.type for e in events] == [EventType.VERIFICATION_PASSED]
    assert not recovered.monitoring
    assert not events[0].incident.monitoring
    # The quiet period counts from the last failure, not from the alerts' resolution.
    assert expire_quiet_period(recovered, POLICY, failed_at + timedelta(minutes=5), verify=True) is None
    outcome = expire_quiet_period(recovered, POLICY, failed_at + timedelta(minutes=6), verify=True)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.state is IncidentState.RESOLVED


def test_a_new_firing_ends_the_watch_and_stale_results_count_for_nothing() -> None:
    incident = quiet_incident()
    watched, _ = applied(incident, result(incident, False, T0 + timedelta(minutes=2), "down"))
    before = result(incident, False, T0 + timedelta(seconds=30), "down")
    assert apply_probe_result(incident, before, QUIET) is None  # before the quiet period began
    record = alert(service="api", at=T0 + timedelta(minutes=3))
    fired = apply_alert(watched, None, record, SEV2, POLICY, record.received_at, verify=True)
    assert fired is not None
    assert fired.incident is not None
    assert not fired.incident.monitoring
    assert fired.incident.quiet_since is None
    during = result(fired.incident, False, T0 + timedelta(minutes=4), "down")
    assert apply_probe_result(fired.incident, during, QUIET) is None  # alerts firing: no watch
    other_episode = ProbeResult.of(incident.id, 3, PROBE, False, "down", T0 + timedelta(minutes=2))
    assert apply_probe_result(incident, other_episode, QUIET) is None


def store_pipeline(engine) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(IncidentStore(engine), load_rules(None), POLICY, probes=parse_probes(PROBES))


async def run(engine, results_at: list[tuple[bool, timedelta]]) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Alerts of service api fire and resolve, probe results follow, the quiet timer runs at
    each minute: the events, by type and time."""
    p = store_pipeline(engine)
    events = await p.process_alerts(
        [alert(service="api"), alert(service="api", status="resolved", at=T0 + timedelta(minutes=1))]
    )
    incident_id = events[0].incident_id
    for ok, offset in results_at:
        r = ProbeResult.of(incident_id, 0, PROBE, ok, "" if ok else "answered 503", T0 + offset)
        first = await p.process_probe_result(r)
        assert (await p.process_probe_result(r)).applied is False  # the same record again: nothing
        events.extend(first.events)
        events.extend(await p.expire_quiet(T0 + offset + timedelta(seconds=1)))
    events.extend(await p.expire_quiet(T0 + timedelta(hours=1)))
    return [(e.type.value, e.occurred_at.isoformat()) for e in events]


SCRIPT = [
    (True, timedelta(minutes=2)),
    (False, timedelta(minutes=3)),
    (False, timedelta(minutes=5)),
    (True, timedelta(minutes=9)),
    (True, timedelta(minutes=10, seconds=30)),
]


async def test_probe_results_through_the_store_resolve_only_after_a_pass(engine) -> None:  # type: ignore[no-untyped-def]
    types = await run(engine, SCRIPT)
    assert [t for t, _ in types] == [
        "opened",
        "alert_resolved",
        "verification_failed",
        "verification_passed",
        "resolved",
    ]
    # Resolved once the quiet period since the last failure (T0+5m) passed: at the timer after
    # the pass at T0+10m30s, not at T0+6m when the alerts had been resolved for 5 minutes.
    assert types[-1][1] == (T0 + timedelta(minutes=10, seconds=31)).isoformat()


async def test_a_replay_of_the_same_records_reaches_the_same_decisions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outcomes = []
    for name in ("first", "replay"):
        url = f"sqlite:///{tmp_path / name}.db"
        fresh_database(url)
        engine = async_engine(url)
        outcomes.append(await run(engine, SCRIPT))
        await engine.dispose()
    assert outcomes[0] == outcomes[1]


def test_the_sinks_say_why_in_the_channel_show_monitoring_and_page_on() -> None:
    from sinks.pagerduty_format import pagerduty_calls
    from sinks.slack_format import update_line
    from sinks.statuspage_format import MONITORING_BODY, status_changes

    incident = quiet_incident()
    detail = f"{PROBE} answered 503"
    _, (failed,) = applied(incident, result(incident, False, T0 + timedelta(minutes=2), detail))
    assert update_line(failed) == (
        ":mag: Verification failed: GET https://api.example.com/health answered 503; "
        "the incident stays open and is watched for another 5m"
    )
    (change,) = status_changes(failed, published=True, severities=frozenset(Severity))
    assert (change.kind, change.status, change.body) == ("update", "monitoring", MONITORING_BODY)
    assert (
        pagerduty_calls(failed, paged=True, severities=frozenset(Severity)) == []
    )  # PagerDuty resolves with the incident, not before
