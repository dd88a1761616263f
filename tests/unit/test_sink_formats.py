"""The pure mappings from incident events to PagerDuty calls, Slack messages and status page
changes, in the playbook's exact words."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from models.events import Actor, EventType, IncidentEvent, IncidentState
from models.incident import Command, apply_command
from models.pagerduty_keys import escalation_key
from models.severity import Severity
from sinks.pagerduty_format import (
    PAGED_MATTERS,
    PAGERDUTY_SEVERITY,
    digest_call,
    escalation_followups,
    pagerduty_calls,
)
from sinks.slack_format import (
    announcement,
    channel_name,
    coalesce,
    digest,
    escalation_notice,
    format_duration,
    resolution,
    unique_channel_name,
    update_line,
)
from sinks.statuspage_format import (
    IMPACT,
    Components,
    investigating_body,
    resolved_body,
    status_changes,
)
from testkit.fakes.events import T0, IncidentStory

ALL = frozenset(Severity)
PAGING = frozenset({Severity.SEV1, Severity.SEV2, Severity.SEV3})


def story(**kw: object) -> tuple[IncidentStory, IncidentEvent]:
    s = IncidentStory(**kw)  # type: ignore[arg-type]
    (opened,) = s.fire()
    return s, opened


# --- PagerDuty ----------------------------------------------------------------------------------
def test_only_the_paged_matters_types_depend_on_whether_the_incident_was_paged() -> None:
    """The PagerDuty sink works an event's calls out before it reads the delivery log and keeps
    them unless the event's type is one of PAGED_MATTERS: for every other type, whether the
    incident was paged must change nothing (a trigger is fitted once)."""
    s, opened = story(severity=Severity.SEV3)
    events = [opened]
    events += s.fire("fp2", instance="api-2", severity=Severity.SEV1)
    events += s.escalate({"level": "secondary on-call"}, T0 + timedelta(minutes=16), "no answer")
    events += s.ack()
    events += s.resolve()
    events += s.fire("fp3", instance="api-3", at=T0 + timedelta(hours=1))
    seen = {e.type for e in events}
    assert {EventType.OPENED, EventType.SEVERITY_CHANGED, EventType.ACKNOWLEDGED} <= seen
    assert {EventType.RESOLVED, EventType.REOPENED} <= seen
    differs = set()
    for event in events:
        calls = {
            paged: pagerduty_calls(event, paged=paged, severities=PAGING) for paged in (True, False)
        }
        if calls[True] != calls[False]:
            differs.add(event.type)
    assert differs == {EventType.ACKNOWLEDGED, EventType.RESOLVED}
    assert differs <= PAGED_MATTERS


def test_escalation_alerts_are_acknowledged_whoever_acknowledged() -> None:
    """An acknowledgement made in PagerDuty is of the incident's own alert: the alerts escalation
    opened on other services are acknowledged by sevflow (the own alert is not echoed)."""
    s, _ = story(severity=Severity.SEV1)
    (ack,) = s.ack()
    in_pagerduty = ack.model_copy(update={"actor": Actor(via="pagerduty", name="bob")})
    assert pagerduty_calls(in_pagerduty, paged=True, severities=PAGING) == []
    calls = escalation_followups(in_pagerduty, {"secondary": f"{ack.incident_id}/escalation/secondary"})
    assert [(t, c.action, c.dedup_key) for t, c in calls] == [
        ("secondary", "acknowledge", f"{ack.incident_id}/escalation/secondary")
    ]


def test_an_escalation_page_acknowledged_in_pagerduty_acknowledges_the_incidents_alert() -> None:
    """The secondary acknowledges the page escalation sent them: PagerDuty knows only that alert
    is acknowledged, so sevflow acknowledges the incident's own alert (else PagerDuty goes on
    paging the primary); one made there on the own alert is still not echoed."""
    s, opened = story(severity=Severity.SEV1)
    at = T0 + timedelta(minutes=16)
    secondary = escalation_key(opened.incident_id, "secondary")

    def acknowledged_in_pagerduty(alert: str) -> IncidentEvent:
        command = Command(
            command_id=f"pd-{alert}",
            action="acknowledge",
            incident_id=opened.incident_id,
            actor=Actor(via="pagerduty", name="bob"),
            requested_at=at,
            pagerduty_alert=alert,
        )
        outcome = apply_command(s.incident, command, at)  # type: ignore[arg-type]
        assert outcome is not None
        (event,) = outcome.events
        return event

    on_escalation_page = acknowledged_in_pagerduty(secondary)
    assert on_escalation_page.data == {"pagerduty_alert": secondary}
    calls = pagerduty_calls(on_escalation_page, paged=True, severities=PAGING)
    assert [(c.action, c.dedup_key) for c in calls] == [("acknowledge", opened.incident_id)]
    on_own_alert = acknowledged_in_pagerduty(opened.incident_id)
    assert pagerduty_calls(on_own_alert, paged=True, severities=PAGING) == []


def test_an_incident_acknowledged_before_it_paged_is_paged_acknowledged() -> None:
    """A SEV4 acknowledged (paging nobody), then raised to SEV1: PagerDuty gets the trigger and
    the acknowledgement, or it would escalate an incident someone is working on."""
    s, _ = story(severity=Severity.SEV4)
    (ack,) = s.ack()
    assert pagerduty_calls(ack, paged=False, severities=PAGING) == []
    (raised,) = [
        e
        for e in s.fire("fp2", instance="api-2", severity=Severity.SEV1)
        if e.type is EventType.SEVERITY_CHANGED
    ]
    calls = pagerduty_calls(raised, paged=False, severities=PAGING)
    assert [(c.action, c.dedup_key) for c in calls] == [
        ("trigger", raised.incident_id),
        ("acknowledge", raised.incident_id),
    ]


def test_opened_triggers_with_dedup_key_and_details() -> None:
    _, opened = story()
    (call,) = pagerduty_calls(opened, paged=False, severities=PAGING)
    assert call.action == "trigger"
    assert call.dedup_key == opened.incident_id
    assert call.summary == "[SEV2] API Error Rate Spike"
    assert call.severity == "error"
    assert call.source == "api-1"
    assert call.payload["component"] == "api"
    assert call.payload["group"] == "api"
    assert call.payload["class"] == "HighErrorRate"
    assert call.payload["custom_details"]["impact"] == "Users experiencing slow response times"
    assert [link["text"] for link in call.links] == ["Runbook", "Source (generatorURL)", "Alertmanager"]
    assert call.links[2]["href"] == "http://alertmanager.example.com:9093"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.SEV1, "critical"),
        (Severity.SEV2, "error"),
        (Severity.SEV3, "warning"),
        (Severity.SEV4, "info"),
    ],
)
def test_severity_mapping(severity: Severity, expected: str) -> None:
    _, opened = story(severity=severity)
    assert PAGERDUTY_SEVERITY[severity] == expected
    calls = pagerduty_calls(opened, paged=False, severities=ALL)
    assert calls[0].severity == expected


def test_sev4_does_not_page_by_default() -> None:
    _, opened = story(severity=Severity.SEV4)
    assert pagerduty_calls(opened, paged=False, severities=PAGING) == []


def test_ack_and_resolve_only_for_paged_incidents() -> None:
    s, _ = story()
    (ack,) = s.ack()
    (resolved,) = s.resolve()
    assert [c.action for c in pagerduty_calls(ack, paged=True, severities=PAGING)] == ["acknowledge"]
    assert [c.dedup_key for c in pagerduty_calls(resolved, paged=True, severities=PAGING)] == [
        s.events[0].incident_id
    ]
    assert pagerduty_calls(resolved, paged=False, severities=PAGING) == []


def test_ack_from_pagerduty_is_not_echoed_back() -> None:
    s, _ = story()
    (ack,) = s.command("acknowledge", T0 + timedelta(minutes=1), via="pagerduty")
    assert pagerduty_calls(ack, paged=True, severities=PAGING) == []


def test_alert_churn_and_escalation_do_not_page() -> None:
    s, _ = story()
    (added,) = s.fire("fp2", instance="api-2")
    escalated = added.model_copy(
        update={"type": EventType.ESCALATED, "data": {"level": "2", "targets": "@sre"}}
    )
    assert pagerduty_calls(added, paged=True, severities=PAGING) == []
    assert pagerduty_calls(escalated, paged=True, severities=PAGING) == []


def test_digest_call_counts_all_members() -> None:
    _, opened = story(severity=Severity.SEV3)
    call = digest_call("20260115T143000", [opened.incident], "2026-01-15 14:30 UTC", total=42)
    assert call.dedup_key == "sevflow-storm-20260115T143000"
    assert call.summary.startswith("Alert storm: 42 ")
    assert call.severity == "warning"


# --- Slack ----------------------------------------------------------------------------------------
def test_channel_name_is_a_valid_slack_name() -> None:
    _, opened = story(name="Weird__Name!! With Spaces" + "X" * 120)
    name = channel_name(opened.incident)
    assert name.startswith("incident-20260115-weird")
    assert len(name) <= 80
    assert all(c.islower() or c.isdigit() or c in "-_" for c in name)
    taken = channel_name(opened.incident, 3)
    assert taken.endswith("-3")
    assert len(taken) <= 80


def test_a_channel_name_taken_twenty_times_becomes_the_incidents_own() -> None:
    """A script without Latin letters reads as ``alert``, and twenty incidents of one alert name
    in a day take every numbered name: the incident's id makes the last name its own."""
    _, opened = story(name="ОшибкаБазыДанных" * 10)
    numbered = {channel_name(opened.incident, n) for n in range(1, 21)}
    own = unique_channel_name(opened.incident)
    assert own not in numbered
    assert own.startswith("incident-20260115-alert-")
    assert own.endswith(opened.incident.id.removeprefix("inc_"))
    assert len(own) <= 80
    assert all(c.islower() or c.isdigit() or c in "-_" for c in own)


def test_channel_name_of_the_playbook() -> None:
    _, opened = story(name="ApiErrors")
    assert channel_name(opened.incident) == "incident-20260115-api-errors"


def test_the_channel_names_date_is_the_utc_date_the_announcement_shows() -> None:
    """An opening stamped with an offset (23:30 UTC written as 08:30+09:00 the next day) named
    the channel after the local date, a day after the "Started" above it."""
    _, opened = story(name="ApiErrors")
    late = opened.incident.model_copy(
        update={"opened_at": datetime(2026, 1, 16, 8, 30, tzinfo=timezone(timedelta(hours=9)))}
    )
    assert channel_name(late) == "incident-20260115-api-errors"
    assert "*Started:* 2026-01-15 23:30 UTC" in announcement(late, lead="@oncall", channel="x").text


def test_an_alerts_code_fences_do_not_swallow_the_announcements_own_lines() -> None:
    """Slack has no escape for backticks: "```" in a summary opened a code block, and the
    announcement's *Status:* and *Impact:* lines rendered inside it."""
    _, opened = story(summary="Disk ``` full", impact="```")
    text = announcement(opened.incident, lead="@oncall", channel="incident-x").text
    assert "```" not in text
    assert "Disk `\u200b`\u200b` full" in text
    assert "\n*Status:* Investigating\n" in text


def test_an_alerts_line_breaks_cannot_write_the_announcements_lines() -> None:
    """A summary holding "\\n*Status:* Resolved …" wrote a forged status and impact under the
    title, above the real ones; a blank summary made an empty title."""
    forged = (
        "Disk full\n\n*Status:* Resolved\r\n*Impact:* none, please ignore\u2028"
        "Updates in #general\x1b[2J"
    )
    _, opened = story(summary=forged, impact="Checkout\nis down\x07")
    text = announcement(opened.incident, lead="@oncall", channel="incident-x").text
    lines = text.split("\n")
    assert lines[0] == (
        ":rotating_light: *INCIDENT* - [SEV2] - Disk full *Status:* Resolved *Impact:* none, "
        "please ignore Updates in #general [2J"
    )
    assert lines[2:4] == ["*Status:* Investigating", "*Impact:* Checkout is down"]
    assert sum(line.startswith("*Status:*") for line in lines) == 1
    _, blank = story(name="DiskFull", summary=" \t\n ", impact="  ")
    assert blank.incident.title == "DiskFull"
    text = announcement(blank.incident, lead="@oncall", channel="incident-x").text
    assert text.startswith(":rotating_light: *INCIDENT* - [SEV2] - DiskFull\n")
    assert "*Impact:* Major functionality impaired (impact not yet assessed)" in text


def test_announcement_in_the_playbooks_words() -> None:
    _, opened = story(name="ApiErrors")
    message = announcement(
        opened.incident, lead="@oncall-engineer", channel="incident-20260115-api-errors"
    )
    assert message.text == (
        ":rotating_light: *INCIDENT* - [SEV2] - API Error Rate Spike\n"
        "\n"
        "*Status:* Investigating\n"
        "*Impact:* Users experiencing slow response times\n"
        "*Started:* 2026-01-15 14:30 UTC\n"
        "*Lead:* @oncall-engineer\n"
        "\n"
        "Updates in #incident-20260115-api-errors"
    )
    section, actions = message.blocks
    assert section["text"]["text"] == message.text
    assert [(b["action_id"], b["value"]) for b in actions["elements"]] == [
        ("ack", f"{opened.incident_id}@0"),
        ("resolve", f"{opened.incident_id}@0"),
    ]


def test_a_sev1_announcement_offers_the_escalation_to_the_manager() -> None:
    """The playbook escalates to the engineering manager by hand for SEV1: its announcement has
    the button (receiver/callbacks/slack.py: ``escalate_manager``); a SEV2's has not."""
    _, opened = story(name="ApiDown", severity=Severity.SEV1)
    message = announcement(opened.incident, lead="@oncall", channel="incident-20260115-api-down")
    _, actions = message.blocks
    assert [(b["action_id"], b["text"]["text"], b["value"]) for b in actions["elements"]] == [
        ("ack", "Acknowledge", f"{opened.incident_id}@0"),
        ("resolve", "Resolve", f"{opened.incident_id}@0"),
        ("escalate_manager", "Escalate to manager", f"{opened.incident_id}@0"),
    ]


def test_the_escalation_by_hand_and_the_digest_read_as_such_in_the_channel() -> None:
    s, _ = story(severity=Severity.SEV1)
    (ask,) = s.escalate(
        {"level": "4", "level_name": "engineering manager", "by_hand": "1", "targets": "[]"},
        T0 + timedelta(minutes=45),
        "unacknowledged for 45m: escalate to engineering manager by hand",
    )
    assert update_line(ask) == (
        ":telephone_receiver: Still unacknowledged: escalate to engineering manager by hand "
        f"(the Escalate to manager button, or `sevflow escalate {ask.incident_id} --to manager`)"
    )
    (listed,) = s.escalate(
        {"level": "digest", "digest_day": "2026-01-16", "targets": "[]"}, T0, "listed"
    )
    assert update_line(listed) == ":sunrise: Listed in the morning digest of 2026-01-16"


def test_announcement_without_impact_says_so_and_ack_names_the_lead() -> None:
    s, opened = story(impact=None)
    assert (
        "*Impact:* Major functionality impaired (impact not yet assessed)"
        in announcement(opened.incident, lead="@x", channel="c").text
    )
    (ack,) = s.ack(who="alice")
    text = announcement(ack.incident, lead="@x", channel="c").text
    assert "*Status:* Acknowledged" in text
    assert "*Lead:* @alice" in text


def test_resolution_in_the_playbooks_words_with_unknowns() -> None:
    s, _ = story()
    (resolved,) = s.resolve(at=T0 + timedelta(minutes=45))
    message = resolution(resolved)
    assert message.text == (
        ":white_check_mark: *INCIDENT RESOLVED*\n"
        "\n"
        "*Duration:* 45 minutes\n"
        "*Root Cause:* Unknown (not recorded yet)\n"
        "*Fix:* Unknown (not recorded yet)\n"
        "*Follow-up:* None recorded yet"
    )
    known = resolved.model_copy(
        update={
            "data": {
                "root_cause": "Pool exhaustion",
                "fix": "Bigger pool",
                "follow_up": "[JIRA-123] Add monitoring",
            }
        }
    )
    assert (
        "*Root Cause:* Pool exhaustion\n*Fix:* Bigger pool\n*Follow-up:* [JIRA-123] Add monitoring"
        in (resolution(known).text)
    )


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=20), "less than a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=65), "1 hour 5 minutes"),
        (timedelta(days=2, hours=3, minutes=4), "2 days 3 hours"),
    ],
)
def test_duration_words(delta: timedelta, words: str) -> None:
    assert format_duration(delta) == words


def test_update_lines_and_coalescing() -> None:
    s, _ = story()
    (added,) = s.fire("fp2", instance="api-2")
    escalated = added.model_copy(
        update={
            "type": EventType.ESCALATED,
            "alert": None,
            "data": {
                "level": "2",
                "targets": '[{"kind":"slack","to":"@sre-leads"}]',
                "targets_text": "@sre-leads",
            },
        }
    )
    (ack,) = s.ack(who="bob")
    lines = [update_line(e) for e in (added, escalated, ack)]
    assert lines[0] == ":heavy_plus_sign: New alert: HighErrorRate (SEV2) on api-2: API Error Rate Spike"
    assert lines[1] == ":mega: Escalated to level 2: @sre-leads"
    assert lines[2] == ":eyes: Acknowledged by bob (via slack)"
    message = coalesce([line for line in lines if line])
    assert message.text.startswith("*3 updates*\n• :heavy_plus_sign:")
    assert update_line(s.events[0]) is None  # opened is the announcement, not an update


def test_sla_breach_lines_name_the_target_that_was_missed() -> None:
    s, _ = story(severity=Severity.SEV1)
    (opened,) = s.events

    def breach(**data: str) -> IncidentEvent:
        return opened.model_copy(update={"type": EventType.SLA_BREACHED, "data": data})

    resolve = breach(kind="resolve", severity="SEV1", target="4h")
    acknowledge = breach(kind="acknowledge", severity="SEV3", target="2h")
    assert update_line(resolve) == ":hourglass: Resolution target missed (SEV1: 4h)"
    assert update_line(acknowledge) == ":hourglass: Response target missed (SEV3: 2h)"
    assert update_line(breach()) == ":hourglass: Response target missed (SEV1: < 15 min)"


def test_severity_change_line() -> None:
    s, _ = story(severity=Severity.SEV3)
    events = s.fire("fp2", instance="api-2", severity=Severity.SEV1)
    change = next(e for e in events if e.type is EventType.SEVERITY_CHANGED)
    assert update_line(change).startswith(":arrow_up: Severity changed: SEV3 → SEV1")  # type: ignore[union-attr]


def test_digest_lists_members_and_says_more() -> None:
    members = {f"inc_{i}": f"[SEV3] Disk {i}" for i in range(35)}
    message = digest(members, T0)
    assert message.text.startswith(
        ":cyclone: *ALERT STORM* - 35 SEV3/SEV4 incidents opened since 2026-01-15 14:30 UTC"
    )
    assert "• …and 5 more" in message.text


# --- Status page ----------------------------------------------------------------------------------
def test_status_page_words() -> None:
    _, opened = story()
    assert investigating_body(opened.incident) == (
        "We are investigating reports of users experiencing slow response times. "
        "We will provide an update within 30 minutes."
    )
    assert (
        resolved_body(opened.incident, Components({"api": "API"}))
        == "The issue has been resolved. API is operating normally."
    )


def test_status_page_plan() -> None:
    s, opened = story(severity=Severity.SEV1)
    components = Components({"api": "API"})
    (create,) = status_changes(
        opened,
        published=False,
        severities=frozenset({Severity.SEV1, Severity.SEV2}),
        components=components,
    )
    assert (create.kind, create.status, create.impact) == ("create", "investigating", "critical")
    assert create.components == {"API": "major_outage"}
    (ack,) = s.ack()
    (identified,) = status_changes(ack, published=True, severities=ALL)
    assert identified.status == "identified"
    (resolved,) = s.resolve()
    (resolve,) = status_changes(resolved, published=True, severities=ALL, components=components)
    assert (resolve.kind, resolve.status, resolve.components) == (
        "resolve",
        "resolved",
        {"API": "operational"},
    )
    assert resolve.body is not None
    assert resolve.body.startswith("The issue has been resolved. ")
    assert status_changes(resolved, published=False, severities=ALL) == []
    assert IMPACT[Severity.SEV3] == "minor"


def test_status_page_keeps_an_acknowledged_incident_identified() -> None:
    """A severity change after the acknowledgement does not take the page back to investigating,
    and an acknowledged incident first published by a severity change is created identified."""
    s, _ = story(severity=Severity.SEV2)
    s.ack()
    (raised, *_) = [
        e
        for e in s.fire("fp2", instance="api-2", severity=Severity.SEV1)
        if e.type is EventType.SEVERITY_CHANGED
    ]
    assert raised.incident.state.value == "acknowledged"
    (update,) = status_changes(raised, published=True, severities=ALL)
    assert (update.kind, update.status) == ("update", "identified")
    sev1_only = frozenset({Severity.SEV1})
    (create,) = status_changes(raised, published=False, severities=sev1_only)
    assert (create.kind, create.status) == ("create", "identified")
    assert create.body == "The issue has been identified and a fix is being implemented."


def test_status_page_skips_unpublished_severities() -> None:
    _, opened = story(severity=Severity.SEV3)
    assert (
        status_changes(opened, published=False, severities=frozenset({Severity.SEV1, Severity.SEV2}))
        == []
    )


def test_resolved_state_snapshot() -> None:
    s, _ = story()
    (resolved,) = s.resolve()
    assert resolved.incident.state is IncidentState.RESOLVED
    assert resolved.actor == Actor(via="slack", name="alice")


def test_escalation_lines_mention_slack_users_and_spell_out_contacts() -> None:
    s, _ = story()
    (added,) = s.fire("fp2", instance="api-2")
    targets = [
        {"kind": "slack", "to": "U024BE7LH", "label": "SRE lead"},
        {"kind": "slack", "to": "<!subteam^S0614TZR7>"},
        {"kind": "pagerduty", "to": "secondary", "label": "Secondary On-Call"},
        {"kind": "slack", "to": "#sre", "label": "SRE", "added_later": "ignored"},
    ]
    level = added.model_copy(
        update={
            "type": EventType.ESCALATED,
            "alert": None,
            "data": {"level": "2", "targets": json.dumps(targets)},
        }
    )
    assert update_line(level) == (
        ":mega: Escalated to level 2: SRE lead (<@U024BE7LH>), <!subteam^S0614TZR7>, "
        "Secondary On-Call, SRE"
    )
    contact = level.model_copy(
        update={
            "data": {
                "level": "data_breach",
                "level_name": "data_breach contact",
                "targets": '[{"kind":"email","to":"legal@optimal-build.com","label":"Legal"}]',
            }
        }
    )
    # Nobody is "notified" by an address alone: the line says whether an email is on its way.
    assert update_line(contact) == (
        ":mega: Data breach contact: legal@optimal-build.com not emailed (no SMTP configured)"
    )
    assert update_line(contact, emailing=True) == (
        ":mega: Data breach contact: legal@optimal-build.com (email queued)"
    )


def test_an_email_target_riding_on_a_level_says_whether_it_is_emailed() -> None:
    s, _ = story()
    (added,) = s.fire("fp2", instance="api-2")
    targets = [
        {"kind": "pagerduty", "to": "primary", "label": "Primary On-Call"},
        {"kind": "email", "to": "security@optimal-build.com", "label": "Security"},
        {"kind": "slack", "to": "#security-incidents", "label": "Security"},
    ]
    level = added.model_copy(
        update={
            "type": EventType.ESCALATED,
            "alert": None,
            "data": {"level": "1", "targets": json.dumps(targets)},
        }
    )
    assert update_line(level) == (
        ":mega: Escalated to level 1: Primary On-Call, security@optimal-build.com not emailed "
        "(no SMTP configured), Security"
    )
    assert "notified" not in (update_line(level, emailing=True) or "")
    assert "security@optimal-build.com (email queued)" in (update_line(level, emailing=True) or "")


def test_words_from_alerts_and_callers_are_shown_not_obeyed() -> None:
    """A label value, an annotation or an API caller's name holding Slack markup pinged everyone
    (<!channel>) or showed a disguised link; they are escaped, sevflow's own mentions are not."""
    s, opened = story(summary="Disk full <!channel>", impact="see <https://evil.example|runbook>")
    (added,) = s.fire("fp2", instance="<!here> & co")
    (ack,) = s.ack(who="<!channel>")
    (resolved,) = s.resolve()
    root = resolved.model_copy(update={"data": {"root_cause": "a <!everyone> bug"}})
    texts = [
        announcement(ack.incident, lead="<!subteam^S0614TZR7>", channel="incident-x").text,
        update_line(added) or "",
        update_line(ack) or "",
        resolution(root).text,
    ]
    joined = "\n".join(texts)
    assert "<!channel>" not in joined
    assert "<!here>" not in joined
    assert "<!everyone>" not in joined
    assert "<https://" not in joined
    assert "[SEV2] - Disk full &lt;!channel&gt;" in texts[0]
    assert "*Impact:* see &lt;https://evil.example|runbook&gt;" in texts[0]
    assert "*Lead:* @&lt;!channel&gt;" in texts[0]
    assert "on &lt;!here&gt; &amp; co" in texts[1]
    assert "Acknowledged by &lt;!channel&gt; (via slack)" in texts[2]
    assert "*Root Cause:* a &lt;!everyone&gt; bug" in texts[3]
    # The mentions sevflow builds itself stay markup: the configured lead, a Slack user who acked.
    assert (
        "*Lead:* <!subteam^S0614TZR7>"
        in announcement(opened.incident, lead="<!subteam^S0614TZR7>", channel="incident-x").text
    )
    (by_user,) = IncidentStory().fire()
    acked = by_user.incident.model_copy(
        update={"acknowledged_by": Actor(via="slack", name="<@U024BE7LH>")}
    )
    assert "*Lead:* <@U024BE7LH>" in announcement(acked, lead="@oncall", channel="incident-x").text


def test_a_security_channel_told_with_a_level_reads_why_it_is_told() -> None:
    """The security contact rides along on the primary's page: the channel's notice gives the
    contact's reason, not the page's."""
    story = IncidentStory(summary="Customer data exfiltration", severity=Severity.SEV1, security=True)
    story.fire()
    data = {
        "level": "1",
        "level_name": "primary on-call",
        "targets": json.dumps([{"kind": "slack", "to": "#security-incidents", "label": "Security"}]),
        "contacts_reason": "security incident: notifying the security contact",
    }
    (event,) = story.escalate(data, T0 + timedelta(seconds=1), "notifying primary on-call")
    text = escalation_notice(event, "incident-20260115-exfil").text
    assert "*Why you are told:* security incident: notifying the security contact\n" in text
    assert "primary on-call" not in text
