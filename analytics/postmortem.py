"""The playbook's blameless postmortem template, filled from an incident's events.

A draft never asserts what nobody said. What sevflow knows is filled in: the title, date,
duration, severity, the lead (who acknowledged first), the timeline (UTC, one line per event:
"- 14:35 - Acknowledged by alice (slack)"), and under the summary the response facts —
detection (the first alert's ``startsAt`` → the incident opened), time to acknowledge against
the severity's response target (met / breached / pending, as ``sevflow report`` judges it), time
to resolve, who was notified and when, escalations, flaps, the runbook — then the services and
alerts involved under the impact, and the root cause, fix and follow-up the resolution recorded.
What only people know — the summary, impact figures, what went well or wrong, action items,
lessons — is a visible prompt in brackets (``[What went well?]``), never the template's example
content. The headings are the template's, in the playbook's order ("Post-Incident Review").
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from analytics.figures import ResponseTargets, episode_status
from analytics.incident_times import Episode, times_of
from models.events import Actor, EventType, IncidentEvent
from models.incident import Incident

__all__ = [
    "IMPACT_PROMPTS",
    "PROMPTS",
    "describe_event",
    "format_hours_minutes",
    "render_postmortem",
    "timeline_lines",
]

#: What people write, as the prompts the draft shows in its place.
PROMPTS = {
    "summary": "[2-3 sentence summary of what happened]",
    "root_cause": "[What actually caused the incident]",
    "went_well": "- [What went well?]",
    "went_wrong": "- [What went wrong?]",
    "action": "| [Action] | [Owner] | [Due date] |",
    "lessons": "[Key takeaways for the team]",
}
#: The impact figures only people know.
IMPACT_PROMPTS = (
    "- [How many users were affected?]",
    "- [How many requests failed?]",
    "- [How many minutes of degraded service?]",
)


def format_hours_minutes(duration: timedelta) -> str:
    """``X hours Y minutes`` as the template writes durations (whole minutes, rounded down)."""
    minutes = max(0, int(duration.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    hour_word = "hour" if hours == 1 else "hours"
    minute_word = "minute" if minutes == 1 else "minutes"
    if hours == 0:
        return f"{minutes} {minute_word}"
    return f"{hours} {hour_word} {minutes} {minute_word}"


def _by(actor: Actor) -> str:
    """`` by alice (slack)``, or `` (slack)`` when the user is unknown."""
    return f" by {actor.name} ({actor.via})" if actor.name else f" ({actor.via})"


def _alertname(event: IncidentEvent) -> str:
    if event.alert is None:
        return event.incident.title
    return event.alert.labels.get("alertname") or event.alert.fingerprint


def describe_event(event: IncidentEvent) -> str:
    """One line of the timeline, in words, for one event."""
    match event.type:
        case EventType.OPENED | EventType.ALERT_ADDED:
            return f"Alert fired: {_alertname(event)}"
        case EventType.ALERT_RESOLVED:
            return f"Alert resolved: {_alertname(event)}"
        case EventType.ALERT_REFIRED:
            return f"Alert fired again: {_alertname(event)}"
        case EventType.SEVERITY_CHANGED:
            before = event.previous_severity.value if event.previous_severity else "?"
            text = f"Severity raised from {before} to {event.incident.severity.value}"
            return f"{text} ({event.reason})" if event.reason else text
        case EventType.ACKNOWLEDGED:
            return f"Acknowledged{_by(event.actor)}"
        case EventType.RESOLVED:
            if event.actor.via == "sevflow":
                return f"Resolved automatically ({event.reason})" if event.reason else "Resolved"
            return f"Resolved{_by(event.actor)}"
        case EventType.REOPENED:
            return f"Reopened: {event.reason}" if event.reason else "Reopened"
        case EventType.ESCALATED:
            level = event.data.get("level")
            # targets_text is the readable form ("Secondary On-Call"); targets is JSON for machines
            targets = event.data.get("targets_text") or event.data.get("targets")
            text = f"Escalated to level {level}" if level else "Escalated"
            return f"{text}: {targets}" if targets else text
        case EventType.SLA_BREACHED:
            kind = event.data.get("kind")
            return f"Response target missed ({kind})" if kind else "Response target missed"
        case EventType.STATUSPAGE_PUBLISHED:
            return f"Published on the status page{_by(event.actor)}"
        case EventType.VERIFICATION_FAILED:
            return f"Verification failed: {event.reason}" if event.reason else "Verification failed"
        case EventType.VERIFICATION_PASSED:
            return f"Verification passed: {event.reason}" if event.reason else "Verification passed"
        case EventType.NOTE_ADDED:
            return f"Note{_by(event.actor)}: {event.data.get('text', '')}"


def timeline_lines(opened_at: datetime, events: Sequence[IncidentEvent]) -> list[str]:
    """``- HH:MM - what happened`` per event, in sequence order (UTC); events on a later day than
    the opening carry their date too, so a long incident's timeline stays unambiguous."""
    opened_day = opened_at.astimezone(UTC).date()
    lines = []
    for event in sorted(events, key=lambda e: e.sequence):
        at = event.occurred_at.astimezone(UTC)
        stamp = at.strftime("%H:%M") if at.date() == opened_day else at.strftime("%Y-%m-%d %H:%M")
        lines.append(f"- {stamp} - {describe_event(event)}")
    return lines


def _span(duration: timedelta) -> str:
    """A duration in words: seconds under a minute, else the template's hours and minutes."""
    seconds = max(0, int(duration.total_seconds()))
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    return format_hours_minutes(duration)


def _clock(at: datetime, day: datetime) -> str:
    """``HH:MM`` (UTC), with the date when it is not ``day``'s."""
    at = at.astimezone(UTC)
    same = at.date() == day.astimezone(UTC).date()
    return at.strftime("%H:%M") if same else at.strftime("%Y-%m-%d %H:%M")


def _detection(opened_at: datetime, ordered: Sequence[IncidentEvent]) -> str:
    first = next((e.alert for e in ordered if e.type is EventType.OPENED and e.alert), None)
    if first is None:
        return f"- Detected: {_clock(opened_at, opened_at)} (when the first alert started: not recorded)"
    delay = opened_at - first.starts_at
    return (
        f"- Detected: {_clock(opened_at, opened_at)}, {_span(delay)} after the first alert "
        f"started ({_clock(first.starts_at, opened_at)})"
    )


def _response(
    incident: Incident, ordered: Sequence[IncidentEvent], targets: ResponseTargets, now: datetime
) -> list[str]:
    """Time to acknowledge against the response target, each later episode's verdict (a
    reopening is answered again, perhaps at another severity), and time to resolve."""
    times = times_of(incident.snapshot(), ordered)

    def judged(episode: Episode) -> str:
        severity = episode.severity or times.severity
        verdict = episode_status(episode, times, targets, now)
        return f"{severity.value} response target {targets.label(severity, times.team)}: {verdict}"

    first, *later = times.response_episodes
    judged_first = judged(first)
    acks = [e for e in ordered if e.type is EventType.ACKNOWLEDGED]
    if times.time_to_acknowledge is not None:
        who = f" by {acks[0].actor.name}" if acks and acks[0].actor.name else ""
        acked = f"- Acknowledged: after {_span(times.time_to_acknowledge)}{who} ({judged_first})"
    else:
        acked = f"- Acknowledged: never ({judged_first})"
    reopenings = [f"reopened {_clock(e.started_at, incident.opened_at)}: {judged(e)}" for e in later]
    answered_again = [f"- After reopening: {'; '.join(reopenings)}"] if reopenings else []
    missed = [e for e in ordered if e.type is EventType.SLA_BREACHED and e.data.get("kind") == "resolve"]
    late = (
        f" (resolve target missed at {_clock(missed[0].occurred_at, incident.opened_at)})"
        if missed
        else ""
    )
    if times.time_to_resolve is not None:
        resolved = f"- Resolved: after {_span(times.time_to_resolve)}{late}"
    else:
        resolved = f"- Resolved: not yet{late}"
    return [acked, *answered_again, resolved]


def _escalations(opened_at: datetime, ordered: Sequence[IncidentEvent]) -> list[str]:
    """Who was notified and when; which escalations ran (the first level's notification at the
    opening is not an escalation)."""
    escalated = [e for e in ordered if e.type is EventType.ESCALATED]
    notified = [
        f"{e.data['targets_text']} at {_clock(e.occurred_at, opened_at)}"
        for e in escalated
        if e.data.get("targets_text") and not e.data.get("by_hand")
    ]
    steps = [
        f"{e.data.get('level_name') or e.data.get('level', '?')} at "
        f"{_clock(e.occurred_at, opened_at)}" + (f" ({e.reason})" if e.reason else "")
        for e in escalated
        if not (e.data.get("level") == "1" and e.data.get("cycle", "0") == "0")
    ]
    return [
        # "none recorded", not "nobody": paging the incident's own service is no event.
        f"- Notified: {'; '.join(notified) if notified else 'none recorded'}",
        f"- Escalations: {'; '.join(steps) if steps else 'none'}",
    ]


def _flaps(opened_at: datetime, ordered: Sequence[IncidentEvent]) -> str:
    reopened = [_clock(e.occurred_at, opened_at) for e in ordered if e.type is EventType.REOPENED]
    if not reopened:
        return "- Flaps: none"
    return f"- Flaps: {len(reopened)} (reopened at {', '.join(reopened)})"


def _impact(incident: Incident, ordered: Sequence[IncidentEvent]) -> list[str]:
    lines = [f"- Services: {', '.join(incident.services)}"] if incident.services else []
    # Per alert name: its alerts (fingerprints) and the earliest startsAt any of them carried
    # (an alert that fired again carries a later one).
    by_name: dict[str, dict[str, datetime]] = {}
    for event in ordered:
        if (alert := event.alert) is not None:
            name = alert.labels.get("alertname") or alert.fingerprint
            seen = by_name.setdefault(name, {})
            seen[alert.fingerprint] = min(seen.get(alert.fingerprint, alert.starts_at), alert.starts_at)
    if by_name:
        alerts = [
            f"{name} ({len(starts)} alert{'' if len(starts) == 1 else 's'}, first started "
            f"{_clock(min(starts.values()), incident.opened_at)})"
            for name, starts in by_name.items()
        ]
        lines.append(f"- Alerts: {'; '.join(alerts)}")
    return [*lines, *IMPACT_PROMPTS]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def render_postmortem(
    incident: Incident,
    events: Sequence[IncidentEvent],
    now: datetime,
    targets: ResponseTargets | None = None,
) -> str:
    """The postmortem draft (Markdown). ``now`` gives the duration of an incident still open
    and judges an unanswered one's response target; ``targets``: the response targets
    (SEV4's "next business day" by the escalation policy's calendar; the playbook's default)."""
    targets = targets or ResponseTargets()
    ordered = sorted(events, key=lambda e: e.sequence)
    recorded = _resolution(ordered)
    lines = [
        *_header(incident, ordered, now),
        "",
        "## Summary",
        PROMPTS["summary"],
        "",
        *_facts(incident, ordered, targets, now),
        "",
        "## Timeline (UTC)",
        *(timeline_lines(incident.opened_at, events) or ["- [no events recorded]"]),
        "",
        "## Root Cause",
        *(_written(recorded) or [PROMPTS["root_cause"]]),
        "",
        "## Impact",
        *_impact(incident, ordered),
        "",
        "## What Went Well",
        PROMPTS["went_well"],
        "",
        "## What Went Wrong",
        PROMPTS["went_wrong"],
        "",
        "## Action Items",
        "| Action | Owner | Due Date |",
        "|--------|-------|----------|",
        *_actions(recorded),
        PROMPTS["action"],
        "",
        "## Lessons Learned",
        PROMPTS["lessons"],
        "",
    ]
    return "\n".join(lines)


def _header(incident: Incident, ordered: Sequence[IncidentEvent], now: datetime) -> list[str]:
    """Title, date, duration (ongoing: up to ``now``), severity and lead (who acknowledged)."""
    opened = incident.opened_at.astimezone(UTC)
    if incident.resolved_at is not None:
        duration = format_hours_minutes(incident.resolved_at - incident.opened_at)
    else:
        duration = f"{format_hours_minutes(now - incident.opened_at)} (ongoing)"
    lead = next(
        (e.actor.name for e in ordered if e.type is EventType.ACKNOWLEDGED and e.actor.name), None
    )
    return [
        f"# Incident Postmortem: {incident.title}",
        "",
        f"**Date:** {opened.strftime('%Y-%m-%d')}",
        f"**Duration:** {duration}",
        f"**Severity:** {incident.severity.value}",
        f"**Lead:** {lead or '[Name]'}",
    ]


def _facts(
    incident: Incident, ordered: Sequence[IncidentEvent], targets: ResponseTargets, now: datetime
) -> list[str]:
    """The summary's recorded facts: detection, response, escalations, flaps, runbook."""
    facts = [
        _detection(incident.opened_at, ordered),
        *_response(incident, ordered, targets, now),
        *_escalations(incident.opened_at, ordered),
        _flaps(incident.opened_at, ordered),
    ]
    if incident.runbook_url:
        facts.append(f"- Runbook: {incident.runbook_url}")
    return facts


def _written(recorded: dict[str, str]) -> list[str]:
    """The root cause, fix and follow-up the resolution recorded, for the Root Cause section."""
    return [
        f"{label}{recorded[key]}"
        for key, label in (("root_cause", ""), ("fix", "Fix: "), ("follow_up", "Follow-up: "))
        if recorded.get(key)
    ]


def _actions(recorded: dict[str, str]) -> list[str]:
    """The recorded follow-up as the first action item's row (none recorded: no row)."""
    if not recorded.get("follow_up"):
        return []
    return [f"| {_cell(recorded['follow_up'])} | [Owner] | [Due date] |"]


def _resolution(ordered: Sequence[IncidentEvent]) -> dict[str, str]:
    """The root cause, fix and follow-up the latest resolution recorded (empty when none)."""
    resolutions = [e for e in ordered if e.type is EventType.RESOLVED and e.data]
    return dict(resolutions[-1].data) if resolutions else {}
