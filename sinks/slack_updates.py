"""The incident channel's updates: one line per event the channel shows (an alert added, fired
again or resolved, a severity change, an acknowledgement, an escalation and whom it reached, a
missed target, a reopening, a status page post, a verification's outcome), and one message for
several lines waiting for the same channel. Pure; the words, escaping and limits are
:mod:`sinks.slack_text`'s (an alert's words are cut to :data:`~sinks.slack_text.LINE_FIELD_MAX`)."""

import re

from models.escalation import DIGEST_STEP, Target, escalation_targets
from models.events import EventType, IncidentEvent
from sinks.slack_security import is_security
from sinks.slack_text import LINE_FIELD_MAX, SlackMessage, escape, note_words, quote, single_section

__all__ = ["EMAIL_QUEUED", "NOT_EMAILED", "coalesce", "update_line"]

#: What the channel says of an email target, with and without the email sink (SEVFLOW_SMTP_HOST).
EMAIL_QUEUED = "(email queued)"
NOT_EMAILED = "not emailed (no SMTP configured)"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")


def update_line(event: IncidentEvent, *, emailing: bool = False, public: bool = False) -> str | None:
    """One line for the incident channel, or None for events the channel does not show.
    ``emailing``: the email sink runs (an escalation's email targets are "email queued", else
    "not emailed (no SMTP configured)"). ``public``: the channel is not private (it was opened
    before the incident became a security one), so a security incident's alerts are not named."""
    incident = event.incident
    if public and is_security(incident) and event.type in _ALERT_WORDS:
        return f":lock: {_WITHHELD[event.type]}: a security incident's alert (details withheld here)"
    match event.type:
        case EventType.ALERT_ADDED:
            return f":heavy_plus_sign: New alert: {_alert_words(event)}"
        case EventType.ALERT_REFIRED:
            return f":repeat: Alert firing again: {_alert_words(event)}"
        case EventType.ALERT_RESOLVED:
            return (
                f":white_circle: Alert resolved: {_alert_words(event)} "
                f"({incident.alerts_firing} still firing)"
            )
        case EventType.SEVERITY_CHANGED:
            return _severity_line(event)
        case EventType.ACKNOWLEDGED:
            return _acknowledged_line(event)
        case EventType.ESCALATED:
            return _escalation_line(event, emailing)
        case EventType.SLA_BREACHED:
            return _breach_line(event)
        case EventType.REOPENED:
            return f":rotating_light: Reopened: {quote(event.reason or 'fired again', incident.id)}"
        case EventType.STATUSPAGE_PUBLISHED:
            who = quote(event.actor.name or event.actor.via, incident.id, LINE_FIELD_MAX)
            title = quote(event.data.get("title", ""), incident.id, LINE_FIELD_MAX)
            return f":globe_with_meridians: Published on the status page by {who}: *{title}*"
        case EventType.VERIFICATION_FAILED | EventType.VERIFICATION_PASSED:
            return _verification_line(event)
    return None


#: The events whose line names an alert (its name, instance, summary) or the reason it fired.
_WITHHELD = {
    EventType.ALERT_ADDED: "New alert",
    EventType.ALERT_REFIRED: "Alert firing again",
    EventType.ALERT_RESOLVED: "Alert resolved",
    EventType.REOPENED: "Reopened",
}
_ALERT_WORDS = frozenset(_WITHHELD)


def coalesce(lines: list[str]) -> SlackMessage:
    """One message for several updates waiting for the same channel (Slack: ~1 post/s/channel)."""
    if len(lines) == 1:
        text = lines[0]
    else:
        text = f"*{len(lines)} updates*\n" + "\n".join(f"• {line}" for line in lines)
    return single_section(text)


def _alert_words(event: IncidentEvent) -> str:
    alert = event.alert
    if alert is None:
        return "an alert"
    name = alert.labels.get("alertname", alert.rule)
    where = alert.labels.get("instance") or alert.labels.get("service") or alert.labels.get("job")
    summary = alert.annotations.get("summary")

    def quoted(text: str) -> str:
        return quote(text, event.incident_id, LINE_FIELD_MAX)

    words = f"{quoted(name)} ({alert.severity})" + (f" on {quoted(where)}" if where else "")
    return words + (f": {quoted(summary)}" if summary else "")


def _severity_line(event: IncidentEvent) -> str:
    incident = event.incident
    before = event.previous_severity
    arrow = (
        ":arrow_up:"
        if before is None or incident.severity.is_more_severe_than(before)
        else (":arrow_down:")
    )
    change = f"{before} → {incident.severity}" if before else str(incident.severity)
    reason = f" ({quote(event.reason, incident.id)})" if event.reason else ""
    return f"{arrow} Severity changed: {change}{reason}"


def _acknowledged_line(event: IncidentEvent) -> str:
    incident_id = event.incident.id
    who = event.actor.name or event.actor.via
    via = quote(event.actor.via, incident_id, LINE_FIELD_MAX)
    return (
        f":eyes: Acknowledged by {quote(who, incident_id, LINE_FIELD_MAX)} (via {via})"
        f"{note_words(event.actor, incident_id)}"
    )


def _breach_line(event: IncidentEvent) -> str:
    """The breach names its own target (acknowledge or resolve, the severity it was judged by);
    the severity's playbook text is only a fallback for an event without them."""
    incident = event.incident
    kind = event.data.get("kind", "acknowledge")
    severity = event.data.get("severity") or str(incident.severity)
    target = event.data.get("target") or incident.severity.info.response_text
    what = "Resolution" if kind == "resolve" else "Response"
    return f":hourglass: {what} target missed ({severity}: {target})"


def _verification_line(event: IncidentEvent) -> str:
    incident_id = event.incident.id
    watch = event.data.get("watch", "the quiet period")
    if event.type is EventType.VERIFICATION_PASSED:
        probe = quote(event.data.get("probe", ""), incident_id, LINE_FIELD_MAX)
        return f":large_green_circle: Verification passed: {probe}; resolving after {watch} quiet"
    found = quote(
        f"{event.data.get('detail') or event.data.get('probe', '')}", incident_id, LINE_FIELD_MAX
    )
    return (
        f":mag: Verification failed: {found}; the incident stays open and is watched for another {watch}"
    )


def _target_words(target: Target, *, contact: bool, emailing: bool) -> str:
    """How the channel names a target: a Slack user or user group as a mention (so Slack notifies
    them), an email address spelled out with whether an email is on its way (the sink's delivery
    is not seen here: "queued", never "notified"), a contact's address spelled out (the reader is
    to use it), otherwise its label."""
    if target.kind == "email":
        return f"{escape(target.to)} {EMAIL_QUEUED if emailing else NOT_EMAILED}"
    if target.kind == "slack" and _USER_ID.match(target.to):
        mention = f"<@{target.to}>"
    elif target.kind == "slack" and target.to.startswith("<!subteam^"):
        mention = target.to
    elif contact:
        return escape(target.to)
    else:
        return escape(target.label or target.to)
    return f"{escape(target.label)} ({mention})" if target.label else mention


def _escalation_line(event: IncidentEvent, emailing: bool) -> str:
    level = event.data.get("level", "next")
    if event.data.get("by_hand"):
        name = escape(event.data.get("level_name") or "the engineering manager")
        return (
            f":telephone_receiver: Still unacknowledged: escalate to {name} by hand "
            f"(the Escalate to manager button, or `sevflow escalate {event.incident_id} --to manager`)"
        )
    if level == DIGEST_STEP:
        day = escape(event.data.get("digest_day", ""))
        return f":sunrise: Listed in the morning digest of {day}"
    contact = not level.isdecimal()
    targets = escalation_targets(event.data)
    words = (
        ", ".join(_target_words(t, contact=contact, emailing=emailing) for t in targets)
        if targets
        else escape(event.data.get("targets_text") or "the next responders")
    )
    if contact:
        name = (event.data.get("level_name") or f"{level} contact").replace("_", " ")
        return f":mega: {escape(name[:1].upper() + name[1:])}: {words}"
    return f":mega: Escalated to level {escape(level)}: {words}"
