"""The playbook's blameless postmortem template, filled from an incident's events.

What sevflow knows is filled in: the title, date, duration, severity, the timeline (UTC), one
line per event ("- 14:35 - Acknowledged by alice (slack)"), the lead (who acknowledged first) and
the root cause, fix and follow-up when the resolution recorded them. What only people know — the
summary, impact figures, what went well or wrong, action items, lessons — keeps the template's
placeholders, so a reviewer sees at a glance what is left to write. The template itself
is the one in the incident-response playbook ("Post-Incident Review"), section for section.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from models.events import Actor, EventType, IncidentEvent
from models.incident import Incident

__all__ = ["describe_event", "format_hours_minutes", "render_postmortem", "timeline_lines"]

_ROOT_CAUSE_PLACEHOLDER = "[What actually caused the incident]"
_TEMPLATE_TAIL = """\
## Root Cause
[What actually caused the incident]

## Impact
- X users affected
- Y requests failed
- Z minutes of degraded service

## What Went Well
- Detection was fast
- Communication was clear
- Rollback worked smoothly

## What Went Wrong
- Alert threshold was too high
- Runbook was outdated
- Recovery took longer than expected

## Action Items
| Action | Owner | Due Date |
|--------|-------|----------|
| Add monitoring for X | @engineer | 2024-01-20 |
| Update runbook for Y | @sre | 2024-01-22 |
| Implement circuit breaker | @engineer | 2024-01-25 |

## Lessons Learned
[Key takeaways for the team]
"""


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


def render_postmortem(incident: Incident, events: Sequence[IncidentEvent], now: datetime) -> str:
    """The postmortem document (Markdown). ``now`` gives the duration of an incident still open."""
    opened = incident.opened_at.astimezone(UTC)
    if incident.resolved_at is not None:
        duration = format_hours_minutes(incident.resolved_at - incident.opened_at)
    else:
        duration = f"{format_hours_minutes(now - incident.opened_at)} (ongoing)"
    timeline = timeline_lines(incident.opened_at, events) or ["- [no events recorded]"]
    ordered = sorted(events, key=lambda e: e.sequence)
    lead = next(
        (e.actor.name for e in ordered if e.type is EventType.ACKNOWLEDGED and e.actor.name), None
    )
    head = [
        f"# Incident Postmortem: {incident.title}",
        "",
        f"**Date:** {opened.strftime('%Y-%m-%d')}",
        f"**Duration:** {duration}",
        f"**Severity:** {incident.severity.value}",
        f"**Lead:** {lead or '[Name]'}",
        "",
        "## Summary",
        "[2-3 sentence summary of what happened]",
        "",
        "## Timeline (UTC)",
        *timeline,
        "",
    ]
    return "\n".join(head) + "\n" + _tail(ordered)


def _tail(ordered: Sequence[IncidentEvent]) -> str:
    """The template's rest, with the latest resolution's root cause, fix and follow-up if given."""
    resolutions = [e for e in ordered if e.type is EventType.RESOLVED and e.data]
    if not resolutions:
        return _TEMPLATE_TAIL
    data = resolutions[-1].data
    written = [
        line
        for key, label in (("root_cause", ""), ("fix", "Fix: "), ("follow_up", "Follow-up: "))
        if (line := f"{label}{data[key]}" if data.get(key) else "")
    ]
    if not written:
        return _TEMPLATE_TAIL
    return _TEMPLATE_TAIL.replace(_ROOT_CAUSE_PLACEHOLDER, "\n".join(written), 1)
