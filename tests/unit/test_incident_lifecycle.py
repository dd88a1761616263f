"""The incident state machine, pure: every rule in milliseconds, time passed in."""

from datetime import UTC, datetime, timedelta

import pytest

from models.events import EventType, IncidentState
from models.incident import (
    Classification,
    LifecyclePolicy,
    Outcome,
    apply_alert,
    apply_command,
    expire_quiet_period,
    new_incident_id,
    slugify,
    superseded,
)
from models.severity import Severity
from tests.builders import T0, alert, command

SEV2 = Classification(severity=Severity.SEV2, rule="high-error-rate")
SEV1 = Classification(severity=Severity.SEV1, rule="service-down")
POLICY = LifecyclePolicy(quiet_period=timedelta(minutes=5), reopen_window=timedelta(hours=1))


def opened() -> Outcome:
    outcome = apply_alert(None, None, alert(instance="a"), SEV2, POLICY, T0)
    assert outcome is not None
    return outcome


def test_first_firing_alert_opens_incident() -> None:
    outcome = opened()
    incident = outcome.incident
    assert incident is not None
    assert incident.id == new_incident_id(alert(instance="a"))
    assert incident.state is IncidentState.TRIGGERED
    assert incident.severity is Severity.SEV2
    assert incident.title == "HighErrorRate fired"
    assert incident.slug == "high-error-rate"
    assert [e.type for e in outcome.events] == [EventType.OPENED]
    event = outcome.events[0]
    assert event.sequence == 1
    assert event.incident.alerts_firing == 1
    assert event.alert is not None
    assert event.alert.fingerprint == alert(instance="a").fingerprint
    assert outcome.alert is not None
    assert outcome.alert.incident_id == incident.id


def test_same_alert_resent_changes_nothing() -> None:
    """Alertmanager re-sends a firing alert every group/repeat interval with its ``startsAt``."""
    first = opened()
    again = alert(instance="a").model_copy(update={"received_at": T0 + timedelta(minutes=5)})
    assert apply_alert(first.incident, first.alert, again, SEV2, POLICY, again.received_at) is None


def test_a_new_start_of_a_firing_alert_is_kept_without_an_event() -> None:
    """A firing record with another ``startsAt`` for an alert firing in the incident (a new
    episode whose resolution came before an HA peer's late firing copy) changes the alert's
    stored start, and nothing else: no event, no second count."""
    first = opened()
    later = alert(instance="a", at=T0 + timedelta(minutes=5))
    outcome = apply_alert(first.incident, first.alert, later, SEV2, POLICY, later.received_at)
    assert outcome is not None
    assert outcome.alert is not None
    assert (outcome.incident, outcome.events) == (None, [])
    assert outcome.alert.starts_at == later.starts_at != first.alert.starts_at


def test_stale_record_changes_nothing() -> None:
    first = opened()
    older = alert(instance="a", status="resolved", at=T0 - timedelta(seconds=1))
    assert apply_alert(first.incident, first.alert, older, SEV2, POLICY, T0) is None


def test_a_late_copy_of_an_earlier_resolution_does_not_resolve_the_firing_alert() -> None:
    """The other Alertmanager of an HA pair (or a retried notification) delivers the resolution of
    the alert's previous episode after the alert fired again: received later, it ended before the
    current firing started, and changes nothing."""
    first = opened()
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))
    resolved = apply_alert(
        first.incident, first.alert, resolution, SEV2, POLICY, T0 + timedelta(minutes=1)
    )
    assert resolved is not None
    refire = alert(instance="a", at=T0 + timedelta(minutes=6))
    fired = apply_alert(resolved.incident, resolved.alert, refire, SEV2, POLICY, refire.received_at)
    assert fired is not None
    assert fired.incident is not None
    assert fired.incident.alerts_firing == 1
    late = resolution.model_copy(update={"received_at": T0 + timedelta(minutes=7)})
    assert apply_alert(fired.incident, fired.alert, late, SEV2, POLICY, late.received_at) is None
    # The resolution of the current firing still resolves it.
    current = refire.model_copy(
        update={
            "status": "resolved",
            "ends_at": T0 + timedelta(minutes=8),
            "received_at": T0 + timedelta(minutes=8),
        }
    )
    done = apply_alert(fired.incident, fired.alert, current, SEV2, POLICY, current.received_at)
    assert done is not None
    assert done.incident is not None
    assert [e.type for e in done.events] == [EventType.ALERT_RESOLVED]
    assert done.incident.alerts_firing == 0


def test_a_resolution_by_hand_that_ends_before_the_start_still_resolves() -> None:
    """``amtool alert add --end=…`` takes whole seconds: the resolution of an alert that started a
    fraction of a second later ends before it started. Same episode (same startsAt): applied. It
    was taken for a late copy of an earlier episode's resolution and ignored, so the incident
    never resolved."""
    first = opened()
    assert first.alert is not None
    by_hand = alert(instance="a", status="resolved", at=T0 + timedelta(seconds=2)).model_copy(
        update={
            "starts_at": first.alert.starts_at,
            "ends_at": first.alert.starts_at - timedelta(seconds=0.4),
        }
    )
    done = apply_alert(first.incident, first.alert, by_hand, SEV2, POLICY, by_hand.received_at)
    assert done is not None
    assert [e.type for e in done.events] == [EventType.ALERT_RESOLVED]


def test_a_resolution_that_ends_hours_before_its_own_start_resolves_its_episode() -> None:
    """No Alertmanager sends an end before the start (its API refuses such an alert), but a
    webhook can. Read as ending at its start, it resolves the episode it names; it used to be
    taken for an earlier episode's late resolution and dropped, leaving the incident open."""
    first = opened()
    assert first.alert is not None
    backwards = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1)).model_copy(
        update={
            "starts_at": first.alert.starts_at,
            "ends_at": first.alert.starts_at - timedelta(hours=3),
        }
    )
    assert not superseded(backwards, first.alert)
    done = apply_alert(first.incident, first.alert, backwards, SEV2, POLICY, backwards.received_at)
    assert done is not None
    assert [e.type for e in done.events] == [EventType.ALERT_RESOLVED]
    # An earlier episode's resolution stays an earlier episode's, whichever way its times run.
    earlier = backwards.model_copy(
        update={
            "starts_at": first.alert.starts_at - timedelta(hours=2),
            "ends_at": first.alert.starts_at - timedelta(hours=3),
        }
    )
    assert superseded(earlier, first.alert)


def test_a_service_or_instance_label_of_blanks_names_nothing() -> None:
    """A ``service`` label of spaces counted as a service ("Services:  " in Slack, one more
    towards the blast radius); the next label of the list is asked instead."""
    blank = alert(instance="   ", service=" \t", job="checkout")
    outcome = apply_alert(None, None, blank, SEV2, POLICY, T0)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.services == ("checkout",)
    assert outcome.incident.instances == ()


def test_new_alert_joins_and_higher_severity_raises() -> None:
    first = opened()
    b = alert(instance="b", at=T0 + timedelta(minutes=1))
    outcome = apply_alert(first.incident, None, b, SEV1, POLICY, b.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert [e.type for e in outcome.events] == [EventType.ALERT_ADDED, EventType.SEVERITY_CHANGED]
    assert [e.sequence for e in outcome.events] == [2, 3]
    assert outcome.incident.severity is Severity.SEV1
    assert outcome.events[1].previous_severity is Severity.SEV2
    assert "SEV1" in (outcome.events[1].reason or "")
    assert outcome.incident.alerts_total == 2
    assert outcome.incident.alerts_firing == 2


def test_lower_severity_alert_does_not_lower_incident() -> None:
    first = opened()
    sev4 = Classification(severity=Severity.SEV4, rule="cosmetic")
    outcome = apply_alert(first.incident, None, alert(instance="b"), sev4, POLICY, T0)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.severity is Severity.SEV2
    assert [e.type for e in outcome.events] == [EventType.ALERT_ADDED]


def test_blast_radius_raises_severity_once_threshold_reached() -> None:
    policy = LifecyclePolicy(blast_radius_instances=3)
    outcome = apply_alert(None, None, alert(instance="i0"), SEV2, policy, T0)
    assert outcome is not None
    severities = []
    for n in (1, 2):
        outcome = apply_alert(outcome.incident, None, alert(instance=f"i{n}"), SEV2, policy, T0)
        assert outcome is not None
        assert outcome.incident is not None
        severities.append(outcome.incident.severity)
    assert severities == [Severity.SEV2, Severity.SEV1]
    assert "3 instances affected" in (outcome.events[-1].reason or "")
    # More instances do not raise it again: the radius raises the alerts' severity once.
    policy2 = LifecyclePolicy(blast_radius_instances=2)
    outcome = apply_alert(
        None,
        None,
        alert(instance="i0"),
        SEV2.model_copy(update={"severity": Severity.SEV3}),
        policy2,
        T0,
    )
    assert outcome is not None
    for n in range(1, 6):
        outcome = apply_alert(
            outcome.incident,
            None,
            alert(instance=f"i{n}"),
            SEV2.model_copy(update={"severity": Severity.SEV3}),
            policy2,
            T0,
        )
        assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.severity is Severity.SEV2


def test_security_and_data_loss_flags_stick() -> None:
    flagged = Classification(severity=Severity.SEV3, rule="r", security=True, data_loss=True)
    outcome = apply_alert(None, None, alert(), flagged, POLICY, T0)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.security
    assert outcome.incident.data_loss


def test_a_data_breach_flag_arriving_with_a_later_alert_sticks_and_is_published() -> None:
    first = apply_alert(None, None, alert(instance="a"), SEV2, POLICY, T0)
    assert first is not None
    assert first.incident is not None
    assert not first.incident.data_breach
    breach = Classification(
        severity=Severity.SEV2, rule="r", security=True, data_breach=True, reasons=("data breach: x",)
    )
    later = alert(instance="b", at=T0 + timedelta(minutes=1))
    outcome = apply_alert(first.incident, None, later, breach, POLICY, later.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.data_breach
    assert outcome.events[-1].incident.data_breach  # the event snapshot carries it
    # A later alert without the flag does not clear it.
    quiet = alert(instance="c", at=T0 + timedelta(minutes=2))
    again = apply_alert(outcome.incident, None, quiet, SEV2, POLICY, quiet.received_at)
    assert again is not None
    assert again.incident is not None
    assert again.incident.data_breach


def resolve_all(first: Outcome, at_minutes: int) -> Outcome:
    resolved = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=at_minutes))
    outcome = apply_alert(first.incident, first.alert, resolved, SEV2, POLICY, resolved.received_at)
    assert outcome is not None
    return outcome


def test_all_resolved_waits_for_quiet_period_then_resolves() -> None:
    quiet = resolve_all(opened(), 10)
    assert quiet.incident is not None
    assert [e.type for e in quiet.events] == [EventType.ALERT_RESOLVED]
    assert quiet.incident.state is IncidentState.TRIGGERED
    assert quiet.incident.quiet_since == T0 + timedelta(minutes=10)
    assert expire_quiet_period(quiet.incident, POLICY, T0 + timedelta(minutes=14)) is None
    done = expire_quiet_period(quiet.incident, POLICY, T0 + timedelta(minutes=15))
    assert done is not None
    assert done.incident is not None
    assert done.incident.state is IncidentState.RESOLVED
    assert done.incident.resolved_at == T0 + timedelta(minutes=15)
    assert [e.type for e in done.events] == [EventType.RESOLVED]
    assert done.events[0].actor.via == "sevflow"


def test_zero_quiet_period_resolves_with_the_last_alert() -> None:
    policy = LifecyclePolicy(quiet_period=timedelta(0))
    first = apply_alert(None, None, alert(instance="a"), SEV2, policy, T0)
    assert first is not None
    resolved = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=3))
    outcome = apply_alert(first.incident, first.alert, resolved, SEV2, policy, resolved.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert [e.type for e in outcome.events] == [EventType.ALERT_RESOLVED, EventType.RESOLVED]
    assert outcome.incident.state is IncidentState.RESOLVED


def test_refiring_during_quiet_period_keeps_incident_open() -> None:
    quiet = resolve_all(opened(), 10)
    refire = alert(instance="a", at=T0 + timedelta(minutes=12))
    outcome = apply_alert(quiet.incident, quiet.alert, refire, SEV2, POLICY, refire.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert [e.type for e in outcome.events] == [EventType.ALERT_REFIRED]
    assert outcome.incident.quiet_since is None
    assert expire_quiet_period(outcome.incident, POLICY, T0 + timedelta(hours=2)) is None


def closed() -> Outcome:
    quiet = resolve_all(opened(), 10)
    assert quiet.incident is not None
    done = expire_quiet_period(quiet.incident, POLICY, T0 + timedelta(minutes=15))
    assert done is not None
    done.alert = quiet.alert
    return done


def test_firing_again_within_reopen_window_reopens_as_flap() -> None:
    done = closed()
    again = alert(instance="a", at=T0 + timedelta(minutes=45))
    outcome = apply_alert(done.incident, done.alert, again, SEV2, POLICY, again.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.id == done.incident.id  # type: ignore[union-attr]
    assert [e.type for e in outcome.events] == [EventType.REOPENED, EventType.ALERT_REFIRED]
    assert outcome.incident.flaps == 1
    assert outcome.incident.state is IncidentState.TRIGGERED
    assert outcome.incident.resolved_at is None


def test_firing_after_reopen_window_opens_new_incident() -> None:
    done = closed()
    later = alert(instance="a", at=T0 + timedelta(hours=3))
    outcome = apply_alert(done.incident, done.alert, later, SEV2, POLICY, later.received_at)
    assert outcome is not None
    assert outcome.incident is not None
    assert outcome.incident.id != done.incident.id  # type: ignore[union-attr]
    assert [e.type for e in outcome.events] == [EventType.OPENED]
    assert outcome.events[0].sequence == 1


def test_resolved_alert_without_incident_opens_nothing() -> None:
    outcome = apply_alert(None, None, alert(status="resolved"), SEV2, POLICY, T0)
    assert outcome is not None
    assert outcome.incident is None
    assert outcome.events == []
    assert outcome.alert is not None
    assert outcome.alert.incident_id is None


def test_acknowledge_then_resolve_by_hand() -> None:
    incident = opened().incident
    assert incident is not None
    acked = apply_command(incident, command(incident.id), T0 + timedelta(minutes=4))
    assert acked is not None
    assert acked.incident is not None
    assert acked.incident.state is IncidentState.ACKNOWLEDGED
    assert acked.events[0].actor.name == "alice"
    assert acked.events[0].incident.acknowledged_at == T0 + timedelta(minutes=4)
    assert apply_command(acked.incident, command(incident.id, command_id="c2"), T0) is None
    resolved = apply_command(acked.incident, command(incident.id, "resolve"), T0 + timedelta(hours=1))
    assert resolved is not None
    assert resolved.incident is not None
    assert resolved.incident.state is IncidentState.RESOLVED
    assert [e.sequence for e in resolved.events] == [3]
    assert apply_command(resolved.incident, command(incident.id, "acknowledge"), T0) is None


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("HighErrorRate", "high-error-rate"),
        ("API_Latency p95", "api-latency-p95"),
        ("KubePodCrashLooping", "kube-pod-crash-looping"),
        ("!!!", "alert"),
        ("Ünïcödé", "unicode"),
        ("DiskVollÄrger", "disk-voll-arger"),
        ("\uff26\uff55\uff4c\uff4c", "full"),  # fullwidth
        ("ОшибкаБазы", "alert"),
        ("GrößeÜberschritten", "grosse-uberschritten"),
        ("ØresundBridgeLatency", "oresund-bridge-latency"),
        ("ŁódźDatacenterDown", "lodz-datacenter-down"),
        ("CaféØlÆble", "cafe-ol-aeble"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_event_ids_are_deterministic() -> None:
    assert [e.event_id for e in opened().events] == [e.event_id for e in opened().events]


def test_within_an_alert_the_kafka_offset_orders_records_not_the_receivers_clocks() -> None:
    """Two receiver replicas, one clock running ten minutes ahead: the firing it took looks newer
    than the resolution another replica took after it. The offset says which came last."""
    from models.alert import RecordPosition

    ahead = alert(instance="a").model_copy(update={"received_at": T0 + timedelta(minutes=10)})
    first = apply_alert(None, None, ahead, SEV2, POLICY, ahead.received_at, RecordPosition(3, 41))
    assert first is not None
    assert first.alert is not None
    assert first.alert.position == RecordPosition(3, 41)
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1))
    assert superseded(resolution, first.alert)  # by the clocks alone: older, dropped
    assert not superseded(resolution, first.alert, RecordPosition(3, 42))
    assert superseded(resolution, first.alert, RecordPosition(3, 40))  # earlier on the partition
    done = apply_alert(
        first.incident,
        first.alert,
        resolution,
        SEV2,
        POLICY,
        resolution.received_at,
        RecordPosition(3, 42),
    )
    assert done is not None
    assert [e.type for e in done.events] == [EventType.ALERT_RESOLVED]
    assert done.alert is not None
    assert done.alert.position == RecordPosition(3, 42)
    # A replay of the firing (its offset is behind the stored one) changes nothing.
    assert apply_alert(done.incident, done.alert, ahead, SEV2, POLICY, T0, RecordPosition(3, 41)) is None


def test_a_resolution_is_judged_against_a_start_at_the_edge_of_what_a_datetime_holds() -> None:
    """Alerts stored before record times were bounded (models/alert.py) may start in the year 1:
    the resolution's skew is compared as a difference, never subtracted from that start (it
    raised OverflowError in the worker at every restart)."""
    ancient = alert(instance="a").model_copy(update={"starts_at": datetime.min.replace(tzinfo=UTC)})
    first = apply_alert(None, None, ancient, SEV2, POLICY, ancient.received_at)
    assert first is not None
    assert first.alert is not None
    ended = ancient.starts_at + timedelta(seconds=30)
    resolution = alert(instance="a", status="resolved", at=T0 + timedelta(minutes=1)).model_copy(
        update={"starts_at": ancient.starts_at, "ends_at": ended}
    )
    assert not superseded(resolution, first.alert)
    resolved = apply_alert(first.incident, first.alert, resolution, SEV2, POLICY, resolution.received_at)
    assert resolved is not None
    assert resolved.alert is not None
    assert resolved.alert.status == "resolved"
