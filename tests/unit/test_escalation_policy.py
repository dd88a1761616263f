"""The escalation policy and its pure step: fast-forwarded clocks, no services."""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.escalation import (
    NEXT_BUSINESS_DAY,
    PAGERDUTY_TARGET_MAX,
    BusinessCalendar,
    EscalationPolicy,
    EscalationState,
    EscalationStatus,
    PlaybookTimes,
    Target,
    advance,
    arm,
    escalate_by_hand,
    format_duration,
    parse_duration,
    playbook_policy,
)
from models.events import Actor, EventType, IncidentState
from models.incident import Command, Incident
from models.severity import Severity
from streams.escalation import PolicyError, load_policy, parse_policy
from tests.builders import T0

M = timedelta(minutes=1)


def incident(severity: Severity = Severity.SEV1, **updates: object) -> Incident:
    base = Incident(
        id="inc_0123456789abcdef",
        group_key='{}:{alertname="ApiDown"}',
        title="API down",
        slug="api-down",
        severity=severity,
        services=("api",),
        opened_at=T0,
        sequence=1,
    )
    return base.model_copy(update=updates)


def acked(inc: Incident, at: datetime) -> Incident:
    return inc.model_copy(
        update={
            "state": IncidentState.ACKNOWLEDGED,
            "acknowledged_at": at,
            "acknowledged_by": Actor(via="slack", name="alice"),
        }
    )


def run(state: EscalationState, inc: Incident, *moments: datetime) -> list[tuple[datetime, str]]:
    """Advance at each moment in turn; (moment, firing key) for everything that fired."""
    fired: list[tuple[datetime, str]] = []
    for moment in moments:
        step = advance(state, inc, moment)
        state = step.state
        fired.extend((moment, f.key) for f in step.firings)
    return fired


# --- the playbook's policy -------------------------------------------------------------------


def test_playbook_policy_levels_and_targets_per_severity() -> None:
    policy = playbook_policy()
    sev1 = policy.plan(["api"], Severity.SEV1)
    assert [(lv.name, lv.after, lv.again, lv.by_hand) for lv in sev1.levels] == [
        ("primary on-call", timedelta(0), False, False),
        ("secondary on-call", 15 * M, False, False),
        ("primary and secondary on-call again", 45 * M, True, False),
        ("engineering manager", 45 * M, False, True),  # asked for by hand, not paged
    ]
    assert [str(t) for t in sev1.levels[0].targets] == ["pagerduty:primary"]
    assert [str(t) for t in sev1.levels[1].targets] == ["pagerduty:secondary"]
    assert [str(t) for t in sev1.levels[2].targets] == ["pagerduty:primary", "pagerduty:secondary"]
    assert sev1.levels[3].targets[0].kind == "phone"
    assert [lv.name for lv in policy.plan([], Severity.SEV2).levels] == [
        "primary on-call",
        "secondary on-call",
        "primary and secondary on-call again",
    ]
    sev3 = policy.plan([], Severity.SEV3)
    assert [(lv.name, lv.after) for lv in sev3.levels] == [
        ("primary on-call", timedelta(0)),
        ("secondary on-call", 2 * 60 * M),
    ]
    sev4 = policy.plan([], Severity.SEV4)
    assert sev4.levels == ()
    assert sev4.digest
    assert not sev3.digest
    assert policy.acknowledge_targets == {
        Severity.SEV1: 15 * M,
        Severity.SEV2: 30 * M,
        Severity.SEV3: timedelta(hours=2),
        Severity.SEV4: NEXT_BUSINESS_DAY,
    }
    assert {str(t) for t in policy.security_targets} == {
        "email:security@optimal-build.com",
        "slack:#security-incidents",
    }
    # "Legal | legal@optimal-build.com | Data breaches": legal is the data-breach contact; data
    # loss (a disk losing data) is SEV1 but names no extra contact.
    assert [str(t) for t in policy.data_breach_targets] == ["email:legal@optimal-build.com"]
    assert policy.data_loss_targets == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", 15 * M),
        ("2h", timedelta(hours=2)),
        ("1h30m", 90 * M),
        ("1d", timedelta(days=1)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations_parse_and_format(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


# --- business hours ----------------------------------------------------------------------------


def test_next_business_day_skips_weekends_and_holidays_in_its_time_zone() -> None:
    calendar = BusinessCalendar(timezone="Europe/London", days=("mon", "tue", "wed", "thu", "fri"))
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # a Friday
    assert calendar.next_business_day_end(friday_evening) == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    with_holiday = calendar.model_copy(update={"holidays": (date(2026, 11, 30),)})
    assert with_holiday.next_business_day_end(friday_evening) == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    # Local date, not UTC date: 23:30 UTC on Sunday 29 March 2026 is already Monday in London
    # (BST, UTC+1), so the next business day is Tuesday, closing at 17:00 BST = 16:00 UTC.
    late_sunday = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
    assert calendar.next_business_day_end(late_sunday) == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", (0, 1, 2, 3, 4)),
        ("sun-thu", (6, 0, 1, 2, 3)),
        ("Monday, wed", (0, 2)),
        (["mon-wed", "fri"], (0, 1, 2, 4)),
        ([5, 6], (5, 6)),
    ],
)
def test_business_days_by_name_range_or_number(days: object, expected: tuple[int, ...]) -> None:
    assert BusinessCalendar(days=days).days == expected  # type: ignore[arg-type]


def test_an_override_can_repeat_without_a_pause() -> None:
    policy = parse_policy(
        f"{_ONE_LEVEL}\nrepeat_interval: 30m\n"
        "overrides: [{severities: [SEV1], repeat: 2, repeat_interval: 0m}]"
    )
    assert policy.plan([], Severity.SEV1).repeat_interval == timedelta(0)
    assert policy.plan([], Severity.SEV2).repeat_interval == 30 * M


def test_calendar_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="end after they start"):
        BusinessCalendar(start=time(17), end=time(9))


# --- the pure step -----------------------------------------------------------------------------


def test_sev1_fires_each_level_once_on_time_with_its_targets() -> None:
    inc = incident()
    state = arm(inc, playbook_policy(), T0)
    moments = [T0, T0 + 14 * M, T0 + 15 * M, T0 + 16 * M, T0 + 44 * M, T0 + 45 * M, T0 + 3 * 60 * M]
    assert run(state, inc, *moments) == [
        (T0, "level:1"),
        (T0 + 15 * M, "level:2"),
        (T0 + 15 * M, "sla:acknowledge"),
        (T0 + 45 * M, "level:3"),
        (T0 + 45 * M, "level:4"),
    ]
    step = advance(state, inc, T0 + 15 * M)
    _level1, level2, breach = step.firings
    assert level2.type is EventType.ESCALATED
    assert level2.data["level"] == "2"
    assert [str(t) for t in level2.targets] == ["pagerduty:secondary"]
    assert "unacknowledged for 15m" in level2.reason
    assert breach.type is EventType.SLA_BREACHED
    assert breach.data["kind"] == "acknowledge"
    assert breach.data["target"] == "< 15 min"  # the playbook's words
    assert step.state.next_step == 2
    assert step.state.due_at == T0 + 45 * M


def test_advance_is_idempotent() -> None:
    inc = incident()
    first = advance(arm(inc, playbook_policy(), T0), inc, T0 + 20 * M)
    again = advance(first.state, inc, T0 + 20 * M)
    assert len(first.firings) == 3
    assert again.firings == ()
    assert again.state == first.state


def test_acknowledgement_before_the_deadline_stops_everything() -> None:
    inc = incident()
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    answered = acked(inc, T0 + 10 * M)
    step = advance(state, answered, T0 + 2 * 60 * M)
    assert step.firings == ()
    assert step.state.status is EscalationStatus.ACKNOWLEDGED
    assert step.state.time_to_acknowledge == 10 * M
    assert step.state.due_at is None


def test_late_acknowledgement_seen_after_an_outage_records_one_breach_and_fires_no_level() -> None:
    inc = incident(Severity.SEV2)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    # The loop was down from T0 to T0+2h; the incident was acknowledged at T0+40m.
    step = advance(state, acked(inc, T0 + 40 * M), T0 + 2 * 60 * M)
    assert [f.key for f in step.firings] == ["sla:acknowledge"]
    assert "answered after 40m" in step.firings[0].reason
    assert step.state.acknowledge_breached


def test_an_acknowledgement_at_the_target_itself_is_late_as_the_playbooks_targets_are_strict() -> None:
    """ "SEV1 < 15 min": the loop fires ``sla_breached`` at the deadline when nobody answered, so
    an acknowledgement it first sees at the deadline is late too, and one a second before is not."""
    inc = incident()
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    late = advance(state, acked(inc, T0 + 15 * M), T0 + 15 * M)
    assert [f.key for f in late.firings] == ["sla:acknowledge"]
    assert late.firings[0].data["target"] == "< 15 min"  # the playbook's words for its target
    in_time = advance(state, acked(inc, T0 + 15 * M - timedelta(seconds=1)), T0 + 15 * M)
    assert in_time.firings == ()


def test_restart_after_several_deadlines_fires_each_missed_level_once_in_order() -> None:
    inc = incident()
    step = advance(arm(inc, playbook_policy(), T0), inc, T0 + 45 * M)
    assert [f.key for f in step.firings] == [
        "level:1",
        "level:2",
        "level:3",
        "level:4",
        "sla:acknowledge",
    ]
    assert step.state.status is EscalationStatus.EXHAUSTED


def test_security_and_data_breach_contacts_are_notified_once() -> None:
    inc = incident(security=True)
    state = arm(inc, playbook_policy(), T0)
    first = advance(state, inc, T0)
    (level1,) = first.firings
    assert [str(t) for t in level1.targets] == [
        "pagerduty:primary",
        "email:security@optimal-build.com",
        "slack:#security-incidents",
    ]
    # A data breach discovered later, between levels: the legal contact is notified on its own.
    later = inc.model_copy(update={"data_breach": True})
    second = advance(first.state, later, T0 + 5 * M)
    assert [(f.key, [str(t) for t in f.targets]) for f in second.firings] == [
        ("contact:data_breach", ["email:legal@optimal-build.com"])
    ]
    assert second.firings[0].reason == (
        "data-breach incident: data breach contact legal@optimal-build.com not emailed "
        "(no SMTP configured)"
    )
    assert second.state.data_breach_notified
    assert advance(second.state, later, T0 + 6 * M).firings == ()


def test_without_smtp_a_contact_reason_says_the_email_is_not_sent() -> None:
    """Unset SMTP: the event says what happens, "not emailed (no SMTP configured)", never that
    the contact was notified."""
    inc = incident(Severity.SEV4, security=True)  # SEV4: no level, the contact fires on its own
    (contact,) = advance(arm(inc, playbook_policy(), T0), inc, T0).firings
    assert contact.key == "contact:security"
    assert contact.reason == (
        "security incident: security contact told in #security-incidents; "
        "security@optimal-build.com not emailed (no SMTP configured)"
    )
    assert "notif" not in contact.reason


def test_a_contact_riding_along_with_a_level_is_named_in_its_reason() -> None:
    """Told with the first level (one event): its reason says what the contact gets too."""
    inc = incident(security=True)
    (level1,) = advance(arm(inc, playbook_policy(), T0), inc, T0).firings
    assert level1.reason == (
        "notifying primary on-call; security incident: security contact told in "
        "#security-incidents; security@optimal-build.com not emailed (no SMTP configured)"
    )
    (emailed,) = advance(arm(inc, playbook_policy(), T0), inc, T0, emailing=True).firings
    assert emailed.reason.endswith("; emailed security@optimal-build.com")


def test_with_smtp_a_contact_reason_says_who_is_emailed() -> None:
    inc = incident(Severity.SEV4, security=True, data_breach=True)
    step = advance(arm(inc, playbook_policy(), T0), inc, T0, emailing=True)
    assert [(f.key, f.reason) for f in step.firings] == [
        (
            "contact:security",
            "security incident: security contact told in #security-incidents; "
            "emailed security@optimal-build.com",
        ),
        (
            "contact:data_breach",
            "data-breach incident: data breach contact emailed legal@optimal-build.com",
        ),
    ]


def test_a_contact_reason_names_what_happens_to_each_kind_of_target() -> None:
    policy = parse_policy(
        "levels: [{name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}]\n"
        "security_targets: [{kind: email, to: sec@example.com}, {kind: phone, to: '+44 20 7946 0000',"
        " label: CISO}, {kind: slack, to: '@alice'}, {kind: pagerduty, to: secops}]\n"
    )
    inc = acked(incident(), T0 + M).model_copy(update={"security": True})
    (contact,) = advance(arm(inc, policy, T0), inc, T0 + 2 * M).firings
    assert contact.reason == (
        "security incident: security contact @alice mentioned in the incident channel; paged "
        "secops; sec@example.com not emailed (no SMTP configured); CISO (+44 20 7946 0000) to "
        "be called by hand"
    )


def test_smtp_reaches_the_policy_from_the_settings_never_from_the_file() -> None:
    assert load_policy(None, emailing=True).emailing
    assert not load_policy(None).emailing
    with pytest.raises(PolicyError, match="emailing"):
        parse_policy(
            "levels: [{name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}]\n"
            "emailing: true\n"
        )


def test_data_loss_notifies_no_legal_contact_with_the_playbook_policy() -> None:
    """Data loss (a disk losing data) is SEV1, not a breach: the playbook sends legal data
    breaches only, so nothing beyond the levels fires."""
    inc = incident(data_loss=True)
    first = advance(arm(inc, playbook_policy(), T0), inc, T0)
    (level1,) = first.firings
    assert [str(t) for t in level1.targets] == ["pagerduty:primary"]
    assert first.state.data_loss_notified
    later = advance(first.state, inc, T0 + 5 * M)
    assert later.firings == ()


def test_a_policy_file_can_still_name_a_data_loss_contact() -> None:
    policy = parse_policy(
        "levels: [{name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}]\n"
        "data_loss_targets: [{kind: email, to: dba@example.com}]\n"
        "data_breach_targets: [{kind: email, to: counsel@example.com}]\n"
    )
    assert [str(t) for t in policy.data_breach_targets] == ["email:counsel@example.com"]
    inc = incident(data_loss=True, data_breach=True)
    step = advance(arm(inc, policy, T0), inc, T0)
    (level1,) = step.firings
    assert [str(t) for t in level1.targets] == [
        "pagerduty:primary",
        "email:dba@example.com",
        "email:counsel@example.com",
    ]


def test_a_stored_state_without_the_data_breach_fields_still_loads() -> None:
    inc = incident(data_breach=True)
    document = arm(inc, playbook_policy(), T0).model_dump(mode="json")
    del document["data_breach_notified"]
    del document["snapshot"]["data_breach_targets"]
    old = EscalationState.model_validate(document)
    assert not old.data_breach_notified
    # Armed before the upgrade: its snapshot names no breach contact, so none is told.
    assert [f.key for f in advance(old, inc, T0).firings] == ["level:1"]


def test_raised_severity_switches_to_that_plan() -> None:
    inc = incident(Severity.SEV3)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0 + 20 * M).state
    assert state.status is EscalationStatus.ACTIVE  # SEV3: the secondary waits for its 2h target
    raised = inc.model_copy(update={"severity": Severity.SEV1})
    step = advance(state, raised, T0 + 46 * M)
    # SEV1 adds the secondary at 15m, both again and the manager asked for at 45m.
    assert [f.key for f in step.firings] == ["level:2", "level:3", "level:4", "sla:acknowledge"]
    assert step.state.severity is Severity.SEV1


def test_raised_severity_fires_the_levels_its_plan_adds_wherever_they_stand() -> None:
    """SEV3 has notified primary and secondary; SEV1's plan puts a level between them and has
    an override of its own for payments: what SEV1 adds fires, what was notified is not again."""
    policy = parse_policy(
        """
levels:
  - {name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}
  - {name: incident lead, after: 5m, targets: [{kind: slack, to: "@lead"}], severities: [SEV1]}
  - {name: secondary, after: 15m, targets: [{kind: pagerduty, to: secondary}]}
overrides:
  - services: [payments]
    severities: [SEV1]
    levels:
      - {name: payments lead, after: 0m, targets: [{kind: slack, to: "@payments-lead"}]}
      - {name: payments director, after: 10m, targets: [{kind: phone, to: director}]}
"""
    )
    for services, added in [
        (("api",), [("level:2@SEV1", "incident lead")]),
        (
            ("payments",),
            [("level:1@SEV1", "payments lead"), ("level:2@SEV1", "payments director")],
        ),
    ]:
        inc = incident(Severity.SEV3, services=services)
        state = advance(arm(inc, policy, T0), inc, T0 + 16 * M).state
        assert state.status is EscalationStatus.EXHAUSTED
        raised = inc.model_copy(update={"severity": Severity.SEV1})
        step = advance(state, raised, T0 + 20 * M)
        fired = [(f.key, f.data["level_name"]) for f in step.firings if f.key.startswith("level")]
        assert fired == added, services
        assert [f.key for f in advance(step.state, raised, T0 + 60 * M).firings] == []


def test_a_policy_s_snapshot_is_made_once_per_services_and_follows_the_policy() -> None:
    """Arming reuses the snapshot a policy made for the same services its overrides name; another
    policy (a team's variant, or an equal one read again) and services named otherwise get their
    own, each with its plans."""
    text = """
levels:
  - {name: primary, after: 0m, targets: [{kind: pagerduty, to: primary}]}
overrides:
  - services: [payments]
    levels: [{name: payments lead, after: 0m, targets: [{kind: slack, to: "@payments"}]}]
"""
    policy = parse_policy(text)
    api = policy.snapshot(["api"])
    assert policy.snapshot(("api",)) is api
    assert arm(incident(), policy, T0).snapshot is api
    # Services no override names follow the same plans: one snapshot for all of them.
    assert policy.snapshot(["web", "api"]) is api
    assert policy.snapshot([]) is api
    assert arm(incident(services=("checkout",)), policy, T0).snapshot is api
    payments = policy.snapshot(["payments"])
    assert payments is not api
    assert policy.snapshot(["api", "payments"]) is payments
    assert policy.snapshot(("payments", "web")) is payments
    assert payments.plans[Severity.SEV1].levels[0].name == "payments lead"
    assert api.plans[Severity.SEV1].levels[0].name == "primary"
    again = parse_policy(text)
    assert again.snapshot(["api"]) is not api
    assert again.snapshot(["api"]) == api
    variant = policy.adapted(business_hours=BusinessCalendar(timezone="Europe/Paris"))
    assert variant.snapshot(["api"]) is not api
    assert variant.snapshot(["api"]).business_hours.timezone == "Europe/Paris"
    assert policy.snapshot(["api"]).business_hours == policy.business_hours


def test_a_state_stored_before_fired_levels_were_recorded_carries_on() -> None:
    inc = incident(Severity.SEV1)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0 + 16 * M).state
    older = state.model_copy(update={"fired": {}})  # as stored by an earlier version
    assert [f.key for f in advance(older, inc, T0 + 46 * M).firings] == ["level:3", "level:4"]
    assert advance(older, inc, T0 + 17 * M).firings == ()


def test_sev4_is_due_by_the_end_of_the_next_business_day() -> None:
    inc = incident(Severity.SEV4)  # opened Friday 12:00 UTC
    state = advance(arm(inc, playbook_policy(), T0), inc, T0 + 20 * M).state
    assert state.acknowledge_due_at == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    state = advance(state, inc, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)).state  # the digest
    assert advance(state, inc, datetime(2026, 11, 30, 16, 59, tzinfo=UTC)).firings == ()
    late = advance(state, inc, datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    assert [f.key for f in late.firings] == ["sla:acknowledge"]


def test_repeat_runs_the_path_again() -> None:
    policy = playbook_policy().model_copy(update={"repeat": 1})
    inc = incident(Severity.SEV2)
    state = arm(inc, policy, T0)
    fired = run(state, inc, *(T0 + n * 15 * M for n in range(8)))
    assert [key for _, key in fired if key.startswith(("level", "repeat"))] == [
        "level:1",
        "level:2",
        "level:3",
        "repeat1:level:1",
        "repeat1:level:2",
        "repeat1:level:3",
    ]
    assert (T0 + 60 * M, "repeat1:level:1") in fired  # 15m after the last level


def test_resolve_target_breach_is_recorded() -> None:
    policy = playbook_policy().model_copy(
        update={"resolve_targets": {Severity.SEV2: timedelta(hours=1)}}
    )
    inc = incident(Severity.SEV2)
    state = advance(arm(inc, policy, T0), inc, T0).state
    state = advance(state, acked(inc, T0 + 5 * M), T0 + 10 * M).state
    assert state.due_at == T0 + 60 * M  # still owed a resolution
    step = advance(state, acked(inc, T0 + 5 * M), T0 + 61 * M)
    assert [(f.key, f.data["kind"]) for f in step.firings] == [("sla:resolve", "resolve")]


def test_reopened_incident_arms_a_new_escalation_from_now() -> None:
    inc = incident(flaps=1)
    state = arm(inc, playbook_policy(), T0 + 60 * M)
    assert state.escalation_id == "inc_0123456789abcdef#1"
    assert state.started_at == T0 + 60 * M


def test_reopened_incident_escalates_from_when_it_reopened() -> None:
    """Armed in a batch whose latest record is later than the reopening: the escalation still
    runs from the reopening, and an acknowledgement between the two counts."""
    inc = incident(flaps=1, reopened_at=T0 + 10 * M)
    state = arm(inc, playbook_policy(), T0 + 40 * M)
    assert state.started_at == T0 + 10 * M
    assert state.next_level_at == T0 + 10 * M
    answered = advance(state, acked(inc, T0 + 12 * M), T0 + 41 * M).state
    assert answered.time_to_acknowledge == 2 * M


def test_contacts_are_notified_when_the_flag_arrives_after_the_acknowledgement() -> None:
    """A data-breach (so security) alert joins an incident someone already acknowledged: the
    security and legal contacts still hear of it, once; no level fires. Data loss on the same
    incident adds no contact (the playbook's legal contact is for data breaches)."""
    inc = incident(Severity.SEV2)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    state = advance(state, acked(inc, T0 + 5 * M), T0 + 6 * M).state
    flagged = acked(inc, T0 + 5 * M).model_copy(
        update={"security": True, "data_breach": True, "data_loss": True}
    )
    step = advance(state, flagged, T0 + 10 * M)
    assert [(f.key, [str(t) for t in f.targets]) for f in step.firings] == [
        ("contact:security", ["email:security@optimal-build.com", "slack:#security-incidents"]),
        ("contact:data_breach", ["email:legal@optimal-build.com"]),
    ]
    assert advance(step.state, flagged, T0 + 11 * M).firings == ()
    resolved = flagged.model_copy(update={"state": IncidentState.RESOLVED, "resolved_at": T0})
    assert advance(state, resolved, T0 + 12 * M).firings == ()  # too late once resolved


def test_a_severity_raised_after_the_acknowledgement_does_not_make_it_late() -> None:
    """SEV3 acknowledged after 20 minutes (its target is 2 h), raised to SEV1 (15 min) later:
    the acknowledgement was on time for what the incident was."""
    inc = incident(Severity.SEV3)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    state = advance(state, acked(inc, T0 + 20 * M), T0 + 21 * M).state
    raised = acked(inc, T0 + 20 * M).model_copy(update={"severity": Severity.SEV1})
    step = advance(state, raised, T0 + 60 * M)
    assert step.firings == ()
    assert not step.state.acknowledge_breached
    assert step.state.severity is Severity.SEV1


# --- the policy file ----------------------------------------------------------------------------

POLICY_YAML = """
levels:
  - {name: primary on-call, after: 0m, targets: [{kind: pagerduty, to: primary}]}
  - {name: secondary on-call, after: 10m, targets: [{kind: slack, to: "@secondary"}]}
repeat: 2
acknowledge_targets: {SEV1: 5m, SEV4: next_business_day}
security_targets: [{kind: email, to: security@optimal-build.com}]
overrides:
  - services: [payments]
    severities: [SEV1]
    levels:
      - {name: payments lead, after: 0m, targets: [{kind: slack, to: "<!subteam^S0PAY>"}]}
    repeat: 0
business_hours: {timezone: Europe/London, days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00"}
"""


def test_policy_file_with_per_service_and_severity_overrides(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    policy = load_policy(path)
    assert isinstance(policy, EscalationPolicy)
    assert policy.repeat == 2
    assert policy.acknowledge_targets[Severity.SEV1] == 5 * M
    payments = policy.plan(["payments"], Severity.SEV1)
    assert [lv.name for lv in payments.levels] == ["payments lead"]
    assert payments.repeat == 0
    assert payments.levels[0].targets == (Target(kind="slack", to="<!subteam^S0PAY>"),)
    other = policy.plan(["payments"], Severity.SEV2)
    assert [lv.name for lv in other.levels] == ["primary on-call", "secondary on-call"]
    assert other.repeat == 2
    assert policy.business_hours.start == time(8, 0)


def test_snapshot_survives_a_round_trip_through_json() -> None:
    state = arm(incident(Severity.SEV4), playbook_policy(), T0)
    again = EscalationState.model_validate_json(state.model_dump_json())
    assert again == state


_ONE_LEVEL = "levels: [{name: p, after: 0m, targets: [{kind: pagerduty, to: p}]}]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("levels: [", "not YAML"),
        ("- a list", "expected a mapping"),
        ("levels: []", "levels: Tuple should have at least 1 item"),
        (
            "levels: [{name: x, after: -5m, targets: [{kind: pagerduty, to: p}]}]",
            "levels.0.after",
        ),
        ("levels: [{name: x, after: 0m, targets: [{kind: fax, to: p}]}]", "levels.0.targets.0.kind"),
        (
            "levels: [{name: b, after: 15m, targets: [{kind: pagerduty, to: s}]},"
            " {name: a, after: 0m, targets: [{kind: pagerduty, to: p}]}]",
            "level 'a' \\(0s\\) comes before 'b' \\(15m\\)",
        ),
        (
            f"{_ONE_LEVEL}\noverrides: [{{severities: [SEV1], levels: ["
            "{name: b, after: 5m, targets: [{kind: phone, to: d}]},"
            " {name: a, after: 1m, targets: [{kind: phone, to: e}]}]}]",
            "overrides.0: Value error, level 'a'",
        ),
        (f"{_ONE_LEVEL}\nbusiness_hours: {{days: mon-fry}}", "unknown weekday 'fry'"),
        (f"{_ONE_LEVEL}\nbusiness_hours: {{days: [mon, holiday]}}", "unknown weekday 'holiday'"),
        (f"{_ONE_LEVEL}\nbusiness_hours: {{start: 9:00, end: '17:00'}}", 'quoted "HH:MM"'),
    ],
)
def test_bad_policy_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="No such file"):
        load_policy(tmp_path / "absent.yaml")


def test_a_state_stored_by_a_newer_version_still_loads() -> None:
    """During a rolling upgrade a worker may read a state a newer worker wrote, with fields it
    does not know (at the top and in the snapshot): they are ignored, not a crash of the loop."""
    inc = incident(Severity.SEV1)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    document = state.model_dump(mode="json")
    document["paged_twice_guard"] = True
    document["snapshot"]["vip_targets"] = [{"kind": "email", "to": "ceo@optimal-build.com"}]
    assert EscalationState.model_validate(document) == state
    with pytest.raises(PolicyError, match="vip_targets"):
        parse_policy(f"{_ONE_LEVEL}\nvip_targets: []")  # a policy file still refuses a typo


def test_a_pagerduty_target_name_must_fit_the_sinks_refs() -> None:
    Target(kind="pagerduty", to="x" * PAGERDUTY_TARGET_MAX)
    Target(kind="email", to="x" * 255)  # only PagerDuty names become refs
    with pytest.raises(ValidationError, match=f"at most {PAGERDUTY_TARGET_MAX} characters"):
        Target(kind="pagerduty", to="x" * (PAGERDUTY_TARGET_MAX + 1))


# --- the default policy, severity by severity (fast-forwarded clock) ------------------------


def fired_levels(severity: Severity, *moments: datetime, policy: EscalationPolicy | None = None) -> list:
    inc = incident(severity)
    state = arm(inc, policy or playbook_policy(), T0)
    out = []
    for moment in moments:
        step = advance(state, inc, moment)
        state = step.state
        out.extend(
            (
                moment - T0,
                f.data.get("level_name"),
                f.data.get("by_hand") == "1",
                f.data.get("again") == "1",
            )
            for f in step.firings
            if f.type is EventType.ESCALATED
        )
    return out


MINUTES = [T0 + n * M for n in range(0, 24 * 60, 1)]


def test_sev1_pages_primary_secondary_both_again_and_asks_for_the_manager() -> None:
    assert fired_levels(Severity.SEV1, *MINUTES) == [
        (0 * M, "primary on-call", False, False),
        (15 * M, "secondary on-call", False, False),
        (45 * M, "primary and secondary on-call again", False, True),
        (45 * M, "engineering manager", True, False),
    ]
    inc = incident(Severity.SEV1)
    step = advance(arm(inc, playbook_policy(), T0), inc, T0 + 45 * M)
    ask = next(f for f in step.firings if f.data.get("by_hand"))
    assert ask.targets == ()  # nobody is notified: the channel is asked
    assert "by hand" in ask.reason


def test_sev2_pages_primary_secondary_and_both_again_without_the_manager() -> None:
    assert fired_levels(Severity.SEV2, *MINUTES) == [
        (0 * M, "primary on-call", False, False),
        (15 * M, "secondary on-call", False, False),
        (45 * M, "primary and secondary on-call again", False, True),
    ]


def test_sev3_pages_the_secondary_only_when_its_target_passed_unacknowledged() -> None:
    assert fired_levels(Severity.SEV3, *MINUTES) == [
        (0 * M, "primary on-call", False, False),
        (120 * M, "secondary on-call", False, False),
    ]
    inc = incident(Severity.SEV3)
    state = advance(arm(inc, playbook_policy(), T0), inc, T0).state
    assert advance(state, acked(inc, T0 + 90 * M), T0 + 3 * 60 * M).firings == ()


def test_sev4_pages_nobody_and_is_listed_in_the_next_business_mornings_digest() -> None:
    # T0 is Friday 2026-11-27 12:00 UTC; the calendar is Europe/London, business from 09:30.
    policy = playbook_policy().model_copy(
        update={"business_hours": BusinessCalendar(timezone="Europe/Berlin", start=time(9, 30))}
    )
    inc = incident(Severity.SEV4)
    state = arm(inc, policy, T0)
    monday = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 09:30 in Berlin (UTC+1 in winter)
    assert state.digest_due_at == monday
    assert fired_levels(Severity.SEV4, *MINUTES, policy=policy) == []  # nobody paged, ever
    quiet = advance(state, inc, monday - timedelta(seconds=1))
    assert [f.key for f in quiet.firings] == []
    listed = advance(quiet.state, inc, monday)
    (digest,) = listed.firings
    assert digest.key == "digest"
    assert digest.targets == ()
    assert digest.data["digest_day"] == "2026-11-30"
    assert listed.state.digest_due_at is None
    assert advance(listed.state, inc, monday + 60 * M).firings == ()
    # Acknowledged meanwhile, it is still listed (the work is for that day); resolved, it is not.
    assert [f.key for f in advance(state, acked(inc, T0 + M), monday).firings] == ["digest"]
    resolved = inc.model_copy(update={"state": IncidentState.RESOLVED, "resolved_at": T0 + M})
    assert advance(state, resolved, monday).firings == ()


def test_every_delay_of_the_default_policy_is_a_setting() -> None:
    times = PlaybookTimes(
        secondary_after=5 * M, repage_after=10 * M, sev3_secondary_after=60 * M, automatic_manager=True
    )
    policy = playbook_policy(times)
    assert fired_levels(Severity.SEV1, *MINUTES, policy=policy) == [
        (0 * M, "primary on-call", False, False),
        (5 * M, "secondary on-call", False, False),
        (15 * M, "primary and secondary on-call again", False, True),
        (15 * M, "engineering manager", False, False),  # paged automatically: no longer by hand
    ]
    assert fired_levels(Severity.SEV3, *MINUTES, policy=policy)[-1][:2] == (60 * M, "secondary on-call")


def test_an_escalation_by_hand_names_the_manager_and_keeps_the_episode_rule() -> None:
    manager = playbook_policy().manager_targets
    press = Command(
        command_id="slack:1",
        action="escalate",
        to="manager",
        incident_id="inc_0123456789abcdef",
        actor=Actor(via="slack", name="alice"),
        requested_at=T0 + M,
        episode=0,
    )
    applied = escalate_by_hand(incident(), press, manager, T0 + M)
    assert not isinstance(applied, str)
    outcome, firing = applied
    assert [e.type for e in outcome.events] == [EventType.ESCALATED]
    assert firing.key == "manual:manager"
    assert [str(t) for t in firing.targets] == ["phone:engineering-manager"]
    reopened = incident(flaps=1, reopened_at=T0 + 30 * M)
    assert "episode 0" in str(escalate_by_hand(reopened, press, manager, T0 + 31 * M))
    assert escalate_by_hand(incident(), press, (), T0 + M) == (
        "the escalation policy names no manager (manager_targets)"
    )
    with pytest.raises(ValidationError):
        press.model_validate({**press.model_dump(), "to": None})
    with pytest.raises(ValidationError):
        press.model_validate({**press.model_dump(), "action": "acknowledge"})


def test_contacts_riding_on_a_level_carry_their_own_reason() -> None:
    """A data breach open from the start: its contacts are told with the primary's page, and the
    event says why they are told (the level's reason is the primary's, not theirs)."""
    inc = incident(security=True).model_copy(update={"data_breach": True})
    (level1,) = advance(arm(inc, playbook_policy(), T0), inc, T0).firings
    told = (
        "security incident: security contact told in #security-incidents; "
        "security@optimal-build.com not emailed (no SMTP configured); "
        "data-breach incident: data breach contact legal@optimal-build.com not emailed "
        "(no SMTP configured)"
    )
    assert level1.data["contacts_reason"] == told
    assert level1.reason == f"notifying primary on-call; {told}"
    alone = incident()
    (plain,) = advance(arm(alone, playbook_policy(), T0), alone, T0).firings
    assert "contacts_reason" not in plain.data
