"""The postmortem is the playbook's template, section for section, with what sevflow knows filled in."""

import re
from datetime import timedelta

import pytest

from analytics.figures import ResponseTargets
from analytics.postmortem import format_hours_minutes, render_postmortem, timeline_lines
from models.escalation import playbook_policy
from models.events import Actor
from models.incident import Command, apply_command
from models.severity import Severity
from sinks.slack_format import resolution
from store.incidents import IncidentStore
from testkit.fakes.events import T0, IncidentStory
from tests.conftest import FIXTURES
from tests.unit.test_analytics_scenario import NOW, build_scenario

PLAYBOOK = FIXTURES / "seed" / "incident-response-playbook.md"


def playbook_template() -> str:
    text = PLAYBOOK.read_text()
    start = text.index("```markdown\n# Incident Postmortem") + len("```markdown\n")
    return text[start : text.index("```", start)]


def headings(markdown: str) -> list[str]:
    return re.findall(r"^#+ .*$", markdown, flags=re.MULTILINE)


def template_examples() -> list[str]:
    """Every example the template gives as content: its timeline entries, impact figures, what
    went well and wrong, and each cell of its action items (not the table's header)."""
    examples = []
    for line in playbook_template().splitlines():
        if line.startswith("- "):
            examples.append(re.sub(r"^- (\d\d:\d\d - )?", "", line))
        elif line.startswith("| ") and not line.startswith("| Action |"):
            examples += [cell.strip() for cell in line.strip("|").split("|")]
    return examples


def test_the_template_examples_are_found() -> None:
    """The check below is only as good as this list: it holds every example of the template."""
    examples = template_examples()
    assert "Alert fired for high error rate" in examples
    assert "X users affected" in examples
    assert "Detection was fast" in examples
    assert "Alert threshold was too high" in examples
    assert {"Add monitoring for X", "@engineer", "2024-01-20", "@sre"} <= set(examples)
    assert len(examples) == 5 + 3 + 3 + 3 + 9


def test_durations_are_written_as_the_template_writes_them() -> None:
    assert format_hours_minutes(timedelta(minutes=45)) == "45 minutes"
    assert format_hours_minutes(timedelta(hours=1, minutes=1)) == "1 hour 1 minute"
    assert format_hours_minutes(timedelta(hours=26, minutes=5, seconds=59)) == "26 hours 5 minutes"


async def test_postmortem_follows_the_template_and_fills_the_timeline(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    store = IncidentStore(engine)
    incident = await store.get(scenario.ids["HighErrorRate"])
    assert incident is not None
    document = render_postmortem(incident, await store.timeline(incident.id), NOW)

    template = playbook_template()
    # Same sections in the same order; only the title's description is filled in.
    assert headings(document)[1:] == headings(template)[1:]
    assert headings(document)[0] == "# Incident Postmortem: HighErrorRate fired"
    assert "**Date:** 2026-11-27\n" in document
    assert "**Duration:** 40 minutes\n" in document
    assert "**Severity:** SEV2\n" in document
    assert "**Lead:** alice\n" in document  # who acknowledged first, as the announcement names
    timeline = document.split("## Timeline (UTC)\n")[1].split("\n\n")[0].splitlines()
    assert timeline == [
        "- 12:00 - Alert fired: HighErrorRate",
        "- 12:10 - Acknowledged by alice (slack)",
        "- 12:40 - Resolved by alice (cli)",
    ]
    # What only people know is a prompt; none of the template's examples is asserted.
    for prompt in ("[2-3 sentence summary of what happened]", "[What actually caused the incident]"):
        assert prompt in document
    for example in template_examples():
        assert example not in document


async def test_automatic_resolution_severity_and_reopen_read_as_sentences(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    store = IncidentStore(engine)
    checkout = await store.get(scenario.ids["CheckoutDown"])
    assert checkout is not None
    lines = timeline_lines(checkout.opened_at, await store.timeline(checkout.id))
    assert lines == [
        "- 13:00 - Alert fired: CheckoutDown",
        "- 13:20 - Acknowledged by bob (pagerduty)",
        "- 13:30 - Alert resolved: CheckoutDown",
        "- 13:36 - Resolved automatically (all alerts resolved for 0:05:00)",
    ]
    backlog = await store.timeline(scenario.ids["QueueBacklog"])
    assert timeline_lines(backlog[0].incident.opened_at, backlog)[3:6] == [
        "- 16:16 - Alert resolved: QueueBacklog",
        "- 16:20 - Reopened: fired again within the reopen window (flap 1)",
        "- 16:20 - Alert fired again: QueueBacklog",
    ]


async def test_open_incident_duration_is_marked_ongoing(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    store = IncidentStore(engine)
    glitch = await store.get(scenario.ids["UIGlitch"])
    assert glitch is not None
    document = render_postmortem(glitch, await store.timeline(glitch.id), NOW)
    assert "**Duration:** 25 hours 0 minutes (ongoing)\n" in document
    assert "**Severity:** SEV4\n" in document


async def test_events_on_a_later_day_carry_their_date(engine) -> None:  # type: ignore[no-untyped-def]
    scenario = await build_scenario(engine)
    events = await IncidentStore(engine).timeline(scenario.ids["HighErrorRate"])
    late = events[-1].model_copy(update={"occurred_at": events[-1].occurred_at + timedelta(days=1)})
    lines = timeline_lines(events[0].incident.opened_at, [*events[:-1], late])
    assert lines[-1] == "- 2026-11-28 12:40 - Resolved by alice (cli)"


async def test_escalation_sla_and_severity_events_read_as_sentences(engine) -> None:  # type: ignore[no-untyped-def]
    from models.events import EventType
    from models.incident import SEVFLOW, annotate
    from models.severity import Severity

    scenario = await build_scenario(engine)
    incident = await IncidentStore(engine).get(scenario.ids["UIGlitch"])
    assert incident is not None
    at = incident.opened_at + timedelta(minutes=1)
    escalated = annotate(
        incident, EventType.ESCALATED, SEVFLOW, at, data={"level": "2", "targets": "@sre-lead"}
    )
    missed = annotate(incident, EventType.SLA_BREACHED, SEVFLOW, at, data={"kind": "acknowledge"})
    raised = escalated.events[0].model_copy(
        update={
            "type": EventType.SEVERITY_CHANGED,
            "previous_severity": Severity.SEV4,
            "reason": "blast radius: 5 instances affected",
            "incident": incident.model_copy(update={"severity": Severity.SEV3}).snapshot(),
        }
    )
    lines = timeline_lines(incident.opened_at, [escalated.events[0], missed.events[0], raised])
    assert [line.split(" - ", 1)[1] for line in lines] == [
        "Escalated to level 2: @sre-lead",
        "Response target missed (acknowledge)",
        "Severity raised from SEV4 to SEV3 (blast radius: 5 instances affected)",
    ]


def test_resolution_details_reach_the_closing_message_and_the_postmortem() -> None:
    """What a resolution records (API, CLI) is the playbook's closing message, and the
    postmortem's root cause; without it both keep saying what is missing."""
    story = IncidentStory(severity=Severity.SEV2)
    story.fire(at=T0)
    story.ack(at=T0 + timedelta(minutes=5), who="alice")
    assert story.incident is not None
    command = Command(
        command_id="c-resolve",
        action="resolve",
        incident_id=story.incident.id,
        actor=Actor(via="api", name="alice"),
        requested_at=T0 + timedelta(minutes=45),
        root_cause="Database connection pool exhaustion due to slow query",
        fix="Optimized query and increased pool size",
        follow_up="[JIRA-123] Add query performance monitoring",
    )
    outcome = apply_command(story.incident, command, command.requested_at)
    assert outcome is not None
    (resolved,) = outcome.events
    assert resolution(resolved).text == (
        ":white_check_mark: *INCIDENT RESOLVED*\n\n"
        "*Duration:* 45 minutes\n"
        "*Root Cause:* Database connection pool exhaustion due to slow query\n"
        "*Fix:* Optimized query and increased pool size\n"
        "*Follow-up:* [JIRA-123] Add query performance monitoring"
    )
    assert outcome.incident is not None
    document = render_postmortem(outcome.incident, [*story.events, resolved], NOW)
    root_cause = document.split("## Root Cause\n")[1].split("\n\n")[0]
    assert root_cause.splitlines() == [
        "Database connection pool exhaustion due to slow query",
        "Fix: Optimized query and increased pool size",
        "Follow-up: [JIRA-123] Add query performance monitoring",
    ]
    assert "**Lead:** alice\n" in document
    with pytest.raises(ValueError, match="belong to a resolution"):
        Command(**{**command.model_dump(), "action": "acknowledge"})


def scripted_incident(ack_after: timedelta) -> IncidentStory:
    """A SEV2 whose alert started two minutes before it opened: the primary notified at the
    opening, escalated to the secondary after 15 minutes unacknowledged, acknowledged by alice,
    resolved by her 45 minutes in with root cause, fix and follow-up; a second alert joined."""
    story = IncidentStory(severity=Severity.SEV2)
    story.fire(at=T0, started=T0 - timedelta(minutes=2))
    primary = {"level": "1", "level_name": "Primary On-Call", "cycle": "0"}
    story.escalate({**primary, "targets_text": "Primary On-Call"}, T0, "notifying Primary On-Call")
    story.fire("fp2", at=T0 + timedelta(minutes=3), instance="api-2")
    secondary = {"level": "2", "level_name": "Secondary On-Call", "cycle": "0"}
    story.escalate(
        {**secondary, "targets_text": "Secondary On-Call"},
        T0 + timedelta(minutes=15),
        "unacknowledged for 15m: escalating to Secondary On-Call",
    )
    story.ack(at=T0 + ack_after, who="alice")
    story.resolve(
        at=T0 + timedelta(minutes=45),
        who="alice",
        root_cause="Database connection pool exhaustion | slow query",
        fix="Optimized query and increased pool size",
        follow_up="[JIRA-123] Add query performance monitoring",
    )
    return story


def test_the_postmortem_states_the_facts_and_prompts_for_the_rest() -> None:
    story = scripted_incident(ack_after=timedelta(minutes=20))
    assert story.incident is not None
    document = render_postmortem(story.incident, story.events, NOW)
    assert (
        document
        == """\
# Incident Postmortem: API Error Rate Spike

**Date:** 2026-01-15
**Duration:** 45 minutes
**Severity:** SEV2
**Lead:** alice

## Summary
[2-3 sentence summary of what happened]

- Detected: 14:30, 2 minutes after the first alert started (14:28)
- Acknowledged: after 20 minutes by alice (SEV2 response target < 30 min: met)
- Resolved: after 45 minutes
- Notified: Primary On-Call at 14:30; Secondary On-Call at 14:45
- Escalations: Secondary On-Call at 14:45 (unacknowledged for 15m: escalating to Secondary On-Call)
- Flaps: none
- Runbook: https://runbooks.example.com/api-errors

## Timeline (UTC)
- 14:30 - Alert fired: HighErrorRate
- 14:30 - Escalated to level 1: Primary On-Call
- 14:33 - Alert fired: HighErrorRate
- 14:45 - Escalated to level 2: Secondary On-Call
- 14:50 - Acknowledged by alice (slack)
- 15:15 - Resolved by alice (slack)

## Root Cause
Database connection pool exhaustion | slow query
Fix: Optimized query and increased pool size
Follow-up: [JIRA-123] Add query performance monitoring

## Impact
- Services: api
- Alerts: HighErrorRate (2 alerts, first started 14:28)
- [How many users were affected?]
- [How many requests failed?]
- [How many minutes of degraded service?]

## What Went Well
- [What went well?]

## What Went Wrong
- [What went wrong?]

## Action Items
| Action | Owner | Due Date |
|--------|-------|----------|
| [JIRA-123] Add query performance monitoring | [Owner] | [Due date] |
| [Action] | [Owner] | [Due date] |

## Lessons Learned
[Key takeaways for the team]
"""
    )
    assert headings(document)[1:] == headings(playbook_template())[1:]
    for example in template_examples():
        assert example not in document, example


@pytest.mark.parametrize(
    ("ack_after", "judged"),
    [
        (timedelta(minutes=29), "after 29 minutes by alice (SEV2 response target < 30 min: met)"),
        # "< 30 min" is strict: at 30 minutes it is late, as the escalation loop judges it
        (timedelta(minutes=30), "after 30 minutes by alice (SEV2 response target < 30 min: breached)"),
    ],
)
def test_the_response_target_is_met_or_breached(ack_after: timedelta, judged: str) -> None:
    story = scripted_incident(ack_after)
    assert story.incident is not None
    document = render_postmortem(story.incident, story.events, NOW)
    assert f"- Acknowledged: {judged}\n" in document


def test_an_unanswered_incident_is_pending_until_its_target_passes() -> None:
    story = IncidentStory(severity=Severity.SEV1)
    story.fire(at=T0)
    assert story.incident is not None
    within = render_postmortem(story.incident, story.events, T0 + timedelta(minutes=10))
    assert "- Acknowledged: never (SEV1 response target < 15 min: pending)\n" in within
    assert "- Resolved: not yet\n" in within
    assert "- Notified: none recorded\n- Escalations: none\n" in within
    late = render_postmortem(story.incident, story.events, T0 + timedelta(minutes=16))
    assert "- Acknowledged: never (SEV1 response target < 15 min: breached)\n" in late
    assert "**Lead:** [Name]\n" in late
    assert "## Root Cause\n[What actually caused the incident]\n" in late


def test_each_reopening_is_judged_by_its_own_target_beside_the_first_answer() -> None:
    """A SEV3 acknowledged after 10 minutes, resolved, reopened 30 minutes in and raised to SEV1,
    then acknowledged 20 minutes later (T0: 14:30): the draft said "after 10 minutes by alice (SEV3
    response target < 2 hours: breached)", the second episode's breach under the first's words."""
    story = IncidentStory(severity=Severity.SEV3)
    story.fire(at=T0)
    story.ack(at=T0 + timedelta(minutes=10), who="alice")
    story.resolve(at=T0 + timedelta(minutes=20), who="alice")
    story.fire("fp2", at=T0 + timedelta(minutes=30), instance="api-2")
    story.fire("fp3", at=T0 + timedelta(minutes=31), instance="api-3", severity=Severity.SEV1)
    story.ack(at=T0 + timedelta(minutes=50), who="bob")
    assert story.incident is not None
    assert (story.incident.flaps, story.incident.severity) == (1, Severity.SEV1)
    document = render_postmortem(story.incident, story.events, NOW)
    assert (
        "- Acknowledged: after 10 minutes by alice (SEV3 response target < 2 hours: met)\n"
        "- After reopening: reopened 15:00: SEV1 response target < 15 min: breached\n"
    ) in document


def test_the_policys_targets_judge_the_response() -> None:
    """A policy that sets SEV2's target to 20 minutes: the escalation engine records a breach
    at 25 minutes, and so does the draft, in the policy's words."""
    policy = playbook_policy()
    stricter = policy.model_copy(
        update={
            "acknowledge_targets": {**policy.acknowledge_targets, Severity.SEV2: timedelta(minutes=20)}
        }
    )
    story = scripted_incident(timedelta(minutes=25))
    assert story.incident is not None
    document = render_postmortem(story.incident, story.events, NOW, ResponseTargets.of_policy(stricter))
    assert "by alice (SEV2 response target < 20 min: breached)\n" in document
    playbook = render_postmortem(story.incident, story.events, NOW, ResponseTargets.of_policy(policy))
    assert "by alice (SEV2 response target < 30 min: met)\n" in playbook
