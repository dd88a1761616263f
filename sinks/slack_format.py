"""Incident events → Slack messages and channel names, in the playbook's words. Pure.

Messages are Block Kit with the same words as the ``text`` fallback (notifications and screen
readers use it). Every word that comes from an alert, a caller or an operator is escaped (``&``,
``<``, ``>``, Slack's "Escaping text"): a label value or an API caller's name holding
``<!channel>`` or ``<https://…|a link>`` would otherwise ping everyone or show a disguised link;
only the mentions sevflow builds itself (policy targets, a ``<@U…>`` lead) are markup.

Slack mrkdwn bolds with single asterisks. Limits (:mod:`sinks.limits`): a message's text ≤ 40,000
chars, a section's text ≤ 3000, a button's text ≤ 75; channel names (conversations.create)
lower-case letters, digits, ``-`` and ``_``, at most 80 characters. Slack refuses a message over
them for good (``msg_too_long``, ``invalid_blocks``), so every text is fitted: the words taken from
an alert or a caller are cut to :data:`FIELD_MAX` (the alert lines of an update to
:data:`LINE_FIELD_MAX`), ending "… (truncated, see `sevflow incidents show <id>`)", so the
message's own words (status, lead, the incident channel) always show; each section and the text
are cut last of all, never inside an escape or a mention (:func:`sinks.limits.clip_mrkdwn`).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.escalation import DIGEST_STEP, Target, escalation_targets
from models.events import Actor, EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity
from sinks.limits import (
    SLACK_BLOCKS_MAX,
    SLACK_CHANNEL_NAME_MAX,
    SLACK_HEADER_TEXT_MAX,
    SLACK_SECTION_TEXT_MAX,
    SLACK_TEXT_MAX,
    clip,
    clip_mrkdwn,
    text_length,
)

__all__ = [
    "CHANNEL_NAME_MAX",
    "SlackMessage",
    "announcement",
    "channel_name",
    "coalesce",
    "digest",
    "escalation_notice",
    "escape",
    "format_duration",
    "format_started",
    "is_security",
    "morning_digest",
    "private_channel_notice",
    "resolution",
    "runbook_messages",
    "security_announcement",
    "update_line",
]

CHANNEL_NAME_MAX = SLACK_CHANNEL_NAME_MAX
SECTION_TEXT_MAX = SLACK_SECTION_TEXT_MAX
#: How much of one text from an alert or a caller a message shows (sevflow's choice: a section
#: holds 3,000 characters, and the announcement quotes two such texts besides its own words).
FIELD_MAX = 1000
#: The same for an alert's words in an update line (several lines share one section).
LINE_FIELD_MAX = 300
_INVALID = re.compile(r"[^a-z0-9_-]+")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
_MENTION = re.compile(r"^<@[UW][A-Z0-9]{6,}>$")

_STATUS = {
    IncidentState.TRIGGERED: "Investigating",
    IncidentState.ACKNOWLEDGED: "Acknowledged",
    IncidentState.RESOLVED: "Resolved",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message to post: ``text`` is the fallback, ``blocks`` the Block Kit layout."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def channel_name(incident: IncidentSnapshot, attempt: int = 1) -> str:
    """``incident-YYYYMMDD-brief-description``; attempt 2, 3 … add ``-2``, ``-3`` (name taken)."""
    slug = _INVALID.sub("-", incident.slug.lower()).strip("-_") or "incident"
    base = re.sub(r"-{2,}", "-", f"incident-{incident.opened_at:%Y%m%d}-{slug}")
    suffix = f"-{attempt}" if attempt > 1 else ""
    return base[: CHANNEL_NAME_MAX - len(suffix)].rstrip("-_") + suffix


def format_started(at: datetime) -> str:
    """``2024-01-15 14:30 UTC`` (the playbook's form)."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def format_duration(duration: timedelta) -> str:
    """``45 minutes``, ``1 hour 5 minutes``, ``2 days 3 hours``, ``less than a minute``."""
    minutes = int(duration.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(words[:2])


def escape(text: str) -> str:
    """Text shown as written: Slack's control characters escaped (no mention, link or command)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    return clip_mrkdwn(text, limit)


def _quote(text: str, incident_id: str, limit: int = FIELD_MAX) -> str:
    """``text`` from an alert or a caller, escaped and cut to ``limit`` with a marker saying
    where the whole of it is."""
    marker = f"… (truncated, see `sevflow incidents show {incident_id}`)"
    return clip_mrkdwn(escape(text), limit, marker)


def _note(actor: Actor, incident_id: str) -> str:
    """The caller's free-text note, escaped (never a mention), or nothing."""
    return f" — “{_quote(actor.note, incident_id, LINE_FIELD_MAX)}”" if actor.note else ""


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def _buttons(incident_id: str, episode: int, *, manager: bool = False) -> dict[str, Any]:
    """Acknowledge and Resolve (and, with ``manager``, Escalate to manager: the playbook's manual
    escalation for SEV1); each value names the incident and its episode (``<id>@<flaps>``), so a
    click on a message not yet refreshed after a reopen is refused by the worker, not applied to
    the new episode (receiver/callbacks/slack.py parses it)."""
    value = f"{incident_id}@{episode}"
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "action_id": "ack",
            "value": value,
            "style": "primary",
        },
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Resolve"},
            "action_id": "resolve",
            "value": value,
            "style": "danger",
        },
    ]
    if manager:
        elements.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Escalate to manager"},
                "action_id": "escalate_manager",
                "value": value,
            }
        )
    return {"type": "actions", "block_id": "incident-actions", "elements": elements}


def _lead(incident: IncidentSnapshot, default_lead: str) -> str:
    by = incident.acknowledged_by
    if by is not None and by.name:
        if by.via == "slack" and _MENTION.match(by.name):
            return by.name  # a verified Slack user's own id; nobody else's name is a mention
        return _quote(by.name if by.name.startswith("@") else f"@{by.name}", incident.id, LINE_FIELD_MAX)
    return default_lead


def announcement(incident: IncidentSnapshot, *, lead: str, channel: str) -> SlackMessage:
    """The playbook's "Internal Notification" for ``#incidents``, with Acknowledge/Resolve."""
    impact = (
        _quote(incident.impact, incident.id)
        if incident.impact
        else f"{incident.severity.info.description} (impact not yet assessed)"
    )
    text = (
        f":rotating_light: *INCIDENT* - [{incident.severity}] - {_quote(incident.title, incident.id)}\n"
        f"\n"
        f"*Status:* {_STATUS[incident.state]}\n"
        f"*Impact:* {impact}\n"
        f"*Started:* {format_started(incident.opened_at)}\n"
        f"*Lead:* {_lead(incident, lead)}\n"
        f"\n"
        f"Updates in #{channel}"
    )
    blocks = [_section(text)]
    if incident.state is not IncidentState.RESOLVED:
        manager = incident.severity is Severity.SEV1
        blocks.append(_buttons(incident.id, incident.flaps, manager=manager))
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), blocks)


def is_security(incident: IncidentSnapshot) -> bool:
    """A security or data-breach incident: its channel is private, and what is posted outside
    it says only its severity and "security incident"."""
    return incident.security or incident.data_breach


def security_announcement(incident: IncidentSnapshot) -> SlackMessage:
    """What ``#incidents`` learns of a security incident: its severity and that it is one; no
    title, impact, labels or channel (those are in the private channel)."""
    state = " (resolved)" if incident.state is IncidentState.RESOLVED else ""
    text = f":lock: *INCIDENT* - [{incident.severity}] - security incident{state}"
    return SlackMessage(text, [_section(text)])


def private_channel_notice(incident: IncidentSnapshot, channel: str, invited: int) -> SlackMessage:
    """What the security contact's channel (``#security-incidents``) learns: where to go."""
    text = (
        f":lock: *[{incident.severity}] security incident*: private channel #{channel} "
        f"({invited} security contact{'s' if invited != 1 else ''} invited; ask there to join)"
    )
    return SlackMessage(text, [_section(text)])


def _alert_words(event: IncidentEvent) -> str:
    alert = event.alert
    if alert is None:
        return "an alert"
    name = alert.labels.get("alertname", alert.rule)
    where = alert.labels.get("instance") or alert.labels.get("service") or alert.labels.get("job")
    summary = alert.annotations.get("summary")

    def quote(text: str) -> str:
        return _quote(text, event.incident_id, LINE_FIELD_MAX)

    words = f"{quote(name)} ({alert.severity})" + (f" on {quote(where)}" if where else "")
    return words + (f": {quote(summary)}" if summary else "")


#: What the channel says of an email target, with and without the email sink (SEVFLOW_SMTP_HOST).
EMAIL_QUEUED = "(email queued)"
NOT_EMAILED = "not emailed (no SMTP configured)"


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


def escalation_notice(event: IncidentEvent, channel: str | None) -> SlackMessage:
    """The message an escalation target's own channel gets (the playbook's "Notify Security
    Team: Slack #security-incidents"): what happened, why they are told, where to follow it."""
    incident = event.incident
    who = _quote(event.data.get("level_name") or f"level {event.data.get('level', '?')}", incident.id)
    impact = (
        _quote(incident.impact, incident.id) if incident.impact else incident.severity.info.description
    )
    # Contacts told together with a level (models.escalation) carry their own reason.
    riding = event.data.get("contacts_reason", "")
    why = (
        _quote(riding, incident.id)
        if riding
        else f"{_quote(event.reason, incident.id) if event.reason else who} ({who})"
    )
    text = (
        f":mega: *[{incident.severity}] {_quote(incident.title, incident.id)}*\n"
        f"\n"
        f"*Why you are told:* {why}\n"
        f"*Status:* {_STATUS[incident.state]}\n"
        f"*Impact:* {impact}\n"
        f"*Started:* {format_started(incident.opened_at)}\n"
        + (f"\nUpdates in #{channel}" if channel else f"\nIncident {incident.id}")
    )
    blocks = [_section(text)]
    if incident.state is not IncidentState.RESOLVED:
        blocks.append(_buttons(incident.id, incident.flaps))
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), blocks)


def update_line(event: IncidentEvent, *, emailing: bool = False) -> str | None:
    """One line for the incident channel, or None for events the channel does not show.
    ``emailing``: the email sink runs (an escalation's email targets are "email queued", else
    "not emailed (no SMTP configured)")."""
    incident = event.incident
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
            before = event.previous_severity
            arrow = (
                ":arrow_up:"
                if before is None or incident.severity.is_more_severe_than(before)
                else (":arrow_down:")
            )
            change = f"{before} → {incident.severity}" if before else str(incident.severity)
            reason = f" ({_quote(event.reason, incident.id)})" if event.reason else ""
            return f"{arrow} Severity changed: {change}{reason}"
        case EventType.ACKNOWLEDGED:
            who = event.actor.name or event.actor.via
            via = _quote(event.actor.via, incident.id, LINE_FIELD_MAX)
            return (
                f":eyes: Acknowledged by {_quote(who, incident.id, LINE_FIELD_MAX)} (via {via})"
                f"{_note(event.actor, incident.id)}"
            )
        case EventType.ESCALATED:
            return _escalation_line(event, emailing)
        case EventType.SLA_BREACHED:
            # The breach names its own target (acknowledge or resolve, the severity it was judged
            # by); the severity's playbook text is only a fallback for an event without them.
            kind = event.data.get("kind", "acknowledge")
            severity = event.data.get("severity") or str(incident.severity)
            target = event.data.get("target") or incident.severity.info.response_text
            what = "Resolution" if kind == "resolve" else "Response"
            return f":hourglass: {what} target missed ({severity}: {target})"
        case EventType.REOPENED:
            return f":rotating_light: Reopened: {_quote(event.reason or 'fired again', incident.id)}"
        case EventType.STATUSPAGE_PUBLISHED:
            who = _quote(event.actor.name or event.actor.via, incident.id, LINE_FIELD_MAX)
            title = _quote(event.data.get("title", ""), incident.id, LINE_FIELD_MAX)
            return f":globe_with_meridians: Published on the status page by {who}: *{title}*"
        case EventType.VERIFICATION_FAILED:
            found = _quote(
                f"{event.data.get('detail') or event.data.get('probe', '')}", incident.id, LINE_FIELD_MAX
            )
            watch = event.data.get("watch", "the quiet period")
            return (
                f":mag: Verification failed: {found}; the incident stays open and is watched for "
                f"another {watch}"
            )
        case EventType.VERIFICATION_PASSED:
            probe = _quote(event.data.get("probe", ""), incident.id, LINE_FIELD_MAX)
            watch = event.data.get("watch", "the quiet period")
            return f":large_green_circle: Verification passed: {probe}; resolving after {watch} quiet"
    return None


def coalesce(lines: list[str]) -> SlackMessage:
    """One message for several updates waiting for the same channel (Slack: ~1 post/s/channel)."""
    if len(lines) == 1:
        text = lines[0]
    else:
        text = f"*{len(lines)} updates*\n" + "\n".join(f"• {line}" for line in lines)
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), [_section(text)])


def _or_unknown(value: str | None, unknown: str, incident_id: str) -> str:
    return _quote(value.strip(), incident_id) if value and value.strip() else unknown


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
    context = f"Resolved by {_quote(who.name or who.via, incident.id)}{_note(who, incident.id)}" + (
        f" ({_quote(event.reason, incident.id)})" if event.reason else ""
    )
    blocks = [
        _section(text),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context)}]},
    ]
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), blocks)


def digest(members: Mapping[str, str], since: datetime, shown: int = 30) -> SlackMessage:
    """One message for the SEV3/SEV4 incidents opened during an alert storm (``members``: incident
    id → "[SEV3] title")."""
    lines = [
        f"• {_quote(title, incident_id, LINE_FIELD_MAX)} ({incident_id})"
        for incident_id, title in list(members.items())[:shown]
    ]
    if len(members) > shown:
        lines.append(f"• …and {len(members) - shown} more")
    text = (
        f":cyclone: *ALERT STORM* - {len(members)} SEV3/SEV4 incidents opened since "
        f"{format_started(since)}\n"
        f"They are summarised here; SEV1/SEV2 incidents are still announced one by one.\n"
        + "\n".join(lines)
    )
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), [_section(text)])


def morning_digest(day: str, members: Mapping[str, str], shown: int = 30) -> SlackMessage:
    """The next business day's digest in the announcement channel: the incidents that paged nobody
    (the playbook's SEV4, "Next business day") and are still open (``members``: incident id →
    "[SEV4] title")."""
    lines = [
        f"• {_quote(title, incident_id, LINE_FIELD_MAX)} ({incident_id})"
        for incident_id, title in list(members.items())[:shown]
    ]
    if len(members) > shown:
        lines.append(f"• …and {len(members) - shown} more")
    count = f"{len(members)} incident{'s' if len(members) != 1 else ''}"
    text = (
        f":sunrise: *FOR TODAY* ({escape(day)}) - {count} due by the end of the business day\n"
        f"They paged nobody; acknowledge or resolve each with `sevflow ack|resolve ID`.\n"
        + "\n".join(lines)
    )
    return SlackMessage(_clip(text, SLACK_TEXT_MAX), [_section(text)])


#: A runbook section's share of a section block (3,000), leaving room to close and reopen a code
#: fence cut by the split.
RUNBOOK_SECTION_MAX = SECTION_TEXT_MAX - 20
#: Sections per runbook message: Slack's 50 blocks, less the header and the context.
RUNBOOK_SECTIONS_PER_MESSAGE = SLACK_BLOCKS_MAX - 2
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK_SAFE = re.compile(r"https?://[^\s<>|]+")
_FENCE = "```"


def _mrkdwn(line: str) -> str:
    """A Markdown line as Slack mrkdwn: escaped (a placeholder ``<namespace>`` stays visible),
    ``**bold**`` as ``*bold*``."""
    return _BOLD.sub(r"*\1*", escape(line))


def _runbook_sections(text: str) -> list[str]:
    """The runbook's Markdown as mrkdwn sections of at most :data:`RUNBOOK_SECTION_MAX`: split at
    line ends (a longer line is cut visibly); a code block cut by the split is closed at the end
    of one section and opened again at the start of the next."""
    sections: list[str] = []
    current: list[str] = []
    size = 0
    in_code = False
    for raw in text.splitlines():
        stripped = raw.strip()
        fence = stripped.startswith(_FENCE)
        line = _FENCE if fence else (escape(raw) if in_code else _mrkdwn(raw))
        line = clip_mrkdwn(line, RUNBOOK_SECTION_MAX - len(_FENCE) * 2 - 2)
        if current and size + text_length(line) + 1 > RUNBOOK_SECTION_MAX - len(_FENCE) - 1:
            sections.append("\n".join([*current, _FENCE] if in_code else current))
            current, size = ([_FENCE] if in_code else []), len(_FENCE) + 1 if in_code else 0
        current.append(line)
        size += text_length(line) + 1
        if fence:
            in_code = not in_code
    if any(part.strip() for part in current):
        sections.append("\n".join([*current, _FENCE] if in_code else current))
    return sections


def runbook_messages(incident: IncidentSnapshot) -> list[SlackMessage]:
    """The incident's runbook for its channel (posted once and the first message pinned): a
    header with its title, the body as sections, and a context naming the alert's own
    ``runbook_url`` and the placeholders no label filled. A runbook longer than one message's 50
    blocks continues in further messages (never refused); empty when the incident has none."""
    runbook = incident.runbook
    if runbook is None:
        return []
    notes = [f"Runbook `{escape(runbook.name)}` matched when the incident opened"]
    if runbook.url:
        url = runbook.url
        link = f"<{url}|{escape(url)}>" if _LINK_SAFE.fullmatch(url) else escape(url)
        notes.append(f"alert's runbook: {link}")
    if runbook.placeholders:
        names = ", ".join(f"`&lt;{escape(p)}&gt;`" for p in runbook.placeholders)
        notes.append(f"fill in (no label gave them): {names}")
    context: dict[str, Any] = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _clip(" · ".join(notes))}],
    }
    title = f":book: Runbook: {runbook.title}"
    sections = _runbook_sections(runbook.text)
    parts = [
        sections[i : i + RUNBOOK_SECTIONS_PER_MESSAGE]
        for i in range(0, len(sections), RUNBOOK_SECTIONS_PER_MESSAGE)
    ] or [[]]
    messages = []
    for number, part in enumerate(parts, start=1):
        heading = title if len(parts) == 1 else f"{title} ({number}/{len(parts)})"
        header = {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(heading, SLACK_HEADER_TEXT_MAX)},
        }
        blocks: list[dict[str, Any]] = [
            header,
            *({"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in part),
        ]
        if number == 1:
            blocks.append(context)
        fallback = "\n".join([heading, *part])
        messages.append(SlackMessage(_clip(fallback, SLACK_TEXT_MAX), blocks))
    return messages
