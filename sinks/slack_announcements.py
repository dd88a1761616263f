"""The incident's messages outside its own channel's updates: its channel's name, the announcement
in ``#incidents`` (with Acknowledge/Resolve), the notice an escalation target's channel gets and
the closing message. Pure; the words, escaping and limits are :mod:`sinks.slack_text`'s."""

import re
from datetime import UTC

from models.events import IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity
from sinks.limits import SLACK_TEXT_MAX
from sinks.slack_security import is_security
from sinks.slack_text import (
    CHANNEL_NAME_MAX,
    LINE_FIELD_MAX,
    STATUS,
    SlackMessage,
    buttons,
    fit,
    format_duration,
    format_started,
    note_words,
    quote,
    section,
)

__all__ = [
    "announcement",
    "channel_name",
    "channel_names",
    "escalation_notice",
    "resolution",
    "unique_channel_name",
]

_INVALID = re.compile(r"[^a-z0-9_-]+")
_MENTION = re.compile(r"^<@[UW][A-Z0-9]{6,}>$")


def channel_name(incident: IncidentSnapshot, attempt: int = 1) -> str:
    """``incident-YYYYMMDD-brief-description``; attempt 2, 3 … add ``-2``, ``-3`` (name taken)."""
    return _named(incident, f"-{attempt}" if attempt > 1 else "")


def channel_names(incident: IncidentSnapshot, numbered: int) -> list[str]:
    """The names tried in turn while Slack answers ``name_taken``: ``numbered`` of
    :func:`channel_name`, then :func:`unique_channel_name`."""
    return [*(channel_name(incident, n) for n in range(1, numbered + 1)), unique_channel_name(incident)]


def unique_channel_name(incident: IncidentSnapshot) -> str:
    """The name to try once the numbered ones are taken: the incident id's own part added
    (``incident-20260115-alert-00154ec221c4828e``), which no other incident has. Twenty
    incidents of one alert name in a day are a storm's ordinary day, and titles in a script
    without Latin letters all read as ``alert``."""
    own = _INVALID.sub("", incident.id.lower().removeprefix("inc_")) or "x"
    return _named(incident, f"-{own[:32]}")


def _named(incident: IncidentSnapshot, suffix: str) -> str:
    slug = _INVALID.sub("-", incident.slug.lower()).strip("-_") or "incident"
    # The date the incident opened in UTC, as the announcement's "Started" (the playbook's).
    base = re.sub(r"-{2,}", "-", f"incident-{incident.opened_at.astimezone(UTC):%Y%m%d}-{slug}")
    return base[: CHANNEL_NAME_MAX - len(suffix)].rstrip("-_") + suffix


def _lead(incident: IncidentSnapshot, default_lead: str) -> str:
    by = incident.acknowledged_by
    if by is not None and by.name:
        if by.via == "slack" and _MENTION.match(by.name):
            return by.name  # a verified Slack user's own id; nobody else's name is a mention
        return quote(by.name if by.name.startswith("@") else f"@{by.name}", incident.id, LINE_FIELD_MAX)
    return default_lead


def announcement(incident: IncidentSnapshot, *, lead: str, channel: str) -> SlackMessage:
    """The playbook's "Internal Notification" for ``#incidents``, with Acknowledge/Resolve."""
    impact = (
        quote(incident.impact, incident.id)
        if incident.impact
        else f"{incident.severity.info.description} (impact not yet assessed)"
    )
    text = (
        f":rotating_light: *INCIDENT* - [{incident.severity}] - {quote(incident.title, incident.id)}\n"
        f"\n"
        f"*Status:* {STATUS[incident.state]}\n"
        f"*Impact:* {impact}\n"
        f"*Started:* {format_started(incident.opened_at)}\n"
        f"*Lead:* {_lead(incident, lead)}\n"
        f"\n"
        f"Updates in #{channel}"
    )
    blocks = [section(text)]
    if incident.state is not IncidentState.RESOLVED:
        manager = incident.severity is Severity.SEV1
        blocks.append(buttons(incident.id, incident.flaps, manager=manager))
    return SlackMessage(fit(text, SLACK_TEXT_MAX), blocks)


def escalation_notice(
    event: IncidentEvent, channel: str | None, *, security_contact: bool = True
) -> SlackMessage:
    """The message an escalation target's own channel gets (the playbook's "Notify Security
    Team: Slack #security-incidents"): what happened, why they are told, where to follow it.
    A channel that is not a security contact's learns of a security incident only its severity,
    why it is told and the incident's id (as #incidents does)."""
    incident = event.incident
    if is_security(incident) and not security_contact:
        return _neutral_notice(event)
    who = quote(event.data.get("level_name") or f"level {event.data.get('level', '?')}", incident.id)
    impact = (
        quote(incident.impact, incident.id) if incident.impact else incident.severity.info.description
    )
    # Contacts told together with a level (models.escalation) carry their own reason.
    riding = event.data.get("contacts_reason", "")
    why = (
        quote(riding, incident.id)
        if riding
        else f"{quote(event.reason, incident.id) if event.reason else who} ({who})"
    )
    text = (
        f":mega: *[{incident.severity}] {quote(incident.title, incident.id)}*\n"
        f"\n"
        f"*Why you are told:* {why}\n"
        f"*Status:* {STATUS[incident.state]}\n"
        f"*Impact:* {impact}\n"
        f"*Started:* {format_started(incident.opened_at)}\n"
        + (f"\nUpdates in #{channel}" if channel else f"\nIncident {incident.id}")
    )
    blocks = [section(text)]
    if incident.state is not IncidentState.RESOLVED:
        blocks.append(buttons(incident.id, incident.flaps))
    return SlackMessage(fit(text, SLACK_TEXT_MAX), blocks)


def _neutral_notice(event: IncidentEvent) -> SlackMessage:
    incident = event.incident
    who = quote(event.data.get("level_name") or f"level {event.data.get('level', '?')}", incident.id)
    text = (
        f":lock: *[{incident.severity}] security incident*\n\n*Why you are told:* {who}\n"
        f"*Status:* {STATUS[incident.state]}\n*Started:* {format_started(incident.opened_at)}\n"
        f"\nIncident {incident.id}"
    )
    return SlackMessage(fit(text, SLACK_TEXT_MAX), [section(text)])


def _or_unknown(value: str | None, unknown: str, incident_id: str) -> str:
    return quote(value.strip(), incident_id) if value and value.strip() else unknown


def resolution(event: IncidentEvent) -> SlackMessage:
    """The playbook's "Close Incident" message; fields nobody recorded say so."""
    incident = event.incident
    resolved_at = incident.resolved_at or event.occurred_at

    def recorded(name: str, unknown: str) -> str:
        return _or_unknown(event.data.get(name), unknown, incident.id)

    text = (
        f":white_check_mark: *INCIDENT RESOLVED*\n"
        f"\n"
        f"*Duration:* {format_duration(resolved_at - incident.opened_at)}\n"
        f"*Root Cause:* {recorded('root_cause', 'Unknown (not recorded yet)')}\n"
        f"*Fix:* {recorded('fix', 'Unknown (not recorded yet)')}\n"
        f"*Follow-up:* {recorded('follow_up', 'None recorded yet')}"
    )
    who = incident.resolved_by or event.actor
    context = f"Resolved by {quote(who.name or who.via, incident.id)}{note_words(who, incident.id)}" + (
        f" ({quote(event.reason, incident.id)})" if event.reason else ""
    )
    blocks = [
        section(text),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(context)}]},
    ]
    return SlackMessage(fit(text, SLACK_TEXT_MAX), blocks)
