"""Events, incidents and alert states are built from validated models without validating them
again: every kind of event the lifecycle emits, and every incident and alert state it makes, must
be exactly what validation would build, and read back the same."""

import uuid
from datetime import timedelta

from models.events import (
    EVENT_NAMESPACE,
    Actor,
    EventType,
    IncidentEvent,
    RunbookSnapshot,
    event_id,
)
from models.incident import (
    SEVFLOW,
    Classification,
    Command,
    LifecyclePolicy,
    Outcome,
    annotate,
    apply_alert,
    apply_command,
    expire_quiet_period,
)
from models.severity import Severity
from tests.builders import T0, alert, command

POLICY = LifecyclePolicy(
    quiet_period=timedelta(minutes=5), blast_radius_instances=2, blast_radius_services=2
)
SEV3 = Classification(severity=Severity.SEV3, rule="warning", reasons=("a warning",))
SEV1 = Classification(severity=Severity.SEV1, rule="service-down", security=True)
RUNBOOK = RunbookSnapshot(name="api", title="API", text="restart {{ instance }}", placeholders=["x"])


def _outcomes() -> list[Outcome]:
    """One incident through every transition: opened (with a runbook and a team), alert added
    with the severity raised (an alert's and the blast radius), re-fired, resolved alerts, the
    quiet period's resolution, reopened, acknowledged, resolved by hand with details,
    published, annotated."""
    first = alert(instance="a", service="api", sevflow_canary="false")
    out = apply_alert(
        None, None, first, SEV3, POLICY, T0, None, lambda r, c: RUNBOOK, False, lambda r: "payments"
    )
    steps: list[Outcome | None] = [out]
    assert out is not None
    assert out.incident is not None
    assert out.alert is not None
    incident, a = out.incident, out.alert

    def step(outcome: Outcome | None) -> None:
        nonlocal incident
        assert outcome is not None
        assert outcome.incident is not None
        steps.append(outcome)
        incident = outcome.incident

    second = alert(instance="b", service="db", at=T0 + timedelta(seconds=1))
    step(apply_alert(incident, None, second, SEV1, POLICY, second.received_at))
    second_state = steps[-1].alert  # type: ignore[union-attr]
    at = T0 + timedelta(minutes=1)
    for record, previous in ((first, a), (second, second_state)):
        resolved = alert(
            status="resolved", at=at, **{k: v for k, v in record.labels.items() if k != "alertname"}
        )
        step(apply_alert(incident, previous, resolved, SEV3, POLICY, at))
    step(expire_quiet_period(incident, POLICY, at + timedelta(minutes=5)))
    again = alert(instance="a", service="api", sevflow_canary="false", at=at + timedelta(minutes=6))
    step(apply_alert(incident, steps[-2].alert, again, SEV3, POLICY, again.received_at))
    later = again.received_at + timedelta(minutes=1)
    step(apply_command(incident, command(incident.id, at=later), later))
    resolve = Command(
        command_id="c2",
        action="resolve",
        incident_id=incident.id,
        actor=Actor(via="api", name="ops", note="on call"),
        requested_at=later,
        root_cause="a bad deploy",
        fix="rolled back",
    )
    step(apply_command(incident, resolve, later))
    publish = resolve.model_copy(
        update={
            "command_id": "c3",
            "action": "publish",
            "root_cause": None,
            "fix": None,
            "public_title": "API errors",
            "public_body": "Fixed.",
        }
    )
    step(apply_command(incident, publish, later))
    step(annotate(incident, EventType.SLA_BREACHED, SEVFLOW, later, reason="late", data={"k": "v"}))
    return [outcome for outcome in steps if outcome is not None]


def _events() -> list[IncidentEvent]:
    return [event for outcome in _outcomes() for event in outcome.events]


def test_every_kind_of_event_is_what_validation_builds() -> None:
    events = _events()
    kinds = {e.type for e in events}
    assert {
        EventType.OPENED,
        EventType.ALERT_ADDED,
        EventType.SEVERITY_CHANGED,
        EventType.ALERT_RESOLVED,
        EventType.RESOLVED,
        EventType.REOPENED,
        EventType.ACKNOWLEDGED,
        EventType.STATUSPAGE_PUBLISHED,
        EventType.SLA_BREACHED,
    } <= kinds
    for event in events:
        validated = IncidentEvent.model_validate(event.model_dump())
        assert validated == event
        assert validated.model_dump_json() == event.model_dump_json()
        assert IncidentEvent.from_bytes(event.to_bytes()) == event


def test_every_incident_and_alert_state_is_what_validation_builds() -> None:
    outcomes = _outcomes()
    incidents = [o.incident for o in outcomes if o.incident is not None]
    states = [o.alert for o in outcomes if o.alert is not None]
    assert len(incidents) == len(outcomes)
    assert len(states) >= 5
    for model in [*incidents, *states]:
        validated = type(model).model_validate(model.model_dump())
        assert validated == model
        assert validated.model_dump_json() == model.model_dump_json()
        assert type(model).model_validate_json(model.model_dump_json()) == model


def test_event_ids_are_uuid5_of_the_incident_and_sequence() -> None:
    for incident_id in ["inc_0123456789abcdef", "", "é/ü", "x" * 300]:
        for sequence in [0, 1, 17, 10**12]:
            expected = uuid.uuid5(EVENT_NAMESPACE, f"{incident_id}/{sequence}")
            assert event_id(incident_id, sequence) == expected
            assert event_id(incident_id, sequence).version == 5
