"""What every Slack message of sevflow is made of: the message, escaping, fitted quotes, sections,
the incident's buttons and the playbook's words for times and states. Pure.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models.events import Actor, IncidentState
from models.notes import one_line
from sinks.limits import SLACK_CHANNEL_NAME_MAX, SLACK_SECTION_TEXT_MAX, SLACK_TEXT_MAX, clip_mrkdwn

__all__ = [
    "CHANNEL_NAME_MAX",
    "FIELD_MAX",
    "LINE_FIELD_MAX",
    "SECTION_TEXT_MAX",
    "STATUS",
    "SlackMessage",
    "buttons",
    "escape",
    "fit",
    "format_duration",
    "format_started",
    "note_words",
    "quote",
    "section",
    "single_section",
]

CHANNEL_NAME_MAX = SLACK_CHANNEL_NAME_MAX
SECTION_TEXT_MAX = SLACK_SECTION_TEXT_MAX
#: How much of one text from an alert or a caller a message shows (sevflow's choice: a section
#: holds 3,000 characters, and the announcement quotes two such texts besides its own words).
FIELD_MAX = 1000
#: The same for an alert's words in an update line (several lines share one section).
LINE_FIELD_MAX = 300

#: The playbook's word for each state of an incident.
STATUS = {
    IncidentState.TRIGGERED: "Investigating",
    IncidentState.ACKNOWLEDGED: "Acknowledged",
    IncidentState.RESOLVED: "Resolved",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message to post: ``text`` is the fallback, ``blocks`` the Block Kit layout."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


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


def fit(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    """``text`` (mrkdwn) cut to ``limit``, never inside an escape or a mention."""
    return clip_mrkdwn(text, limit)


def quote(text: str, incident_id: str, limit: int = FIELD_MAX) -> str:
    """``text`` from an alert or a caller, on one line, escaped and cut to ``limit`` with a
    marker saying where the whole of it is. Every quote fills a line of the message's own (a
    title, *Impact:*, a who): a line break in a summary wrote lines of its own below the title
    (a forged "*Status:* Resolved … please ignore" above the real ones), so control and format
    characters are spaces (:func:`models.notes.one_line`). Three backticks in a row are kept
    apart by zero-width spaces: Slack has no escape for them, and they opened a code block that
    took in the message's own lines after them (its *Status:* and *Impact:*)."""
    marker = f"… (truncated, see `sevflow incidents show {incident_id}`)"
    return clip_mrkdwn(_FENCE.sub(_unfenced, escape(one_line(text))), limit, marker)


_FENCE = re.compile(r"`{3,}")


def _unfenced(found: re.Match[str]) -> str:
    return "\u200b".join(found[0])


def note_words(actor: Actor, incident_id: str) -> str:
    """The caller's free-text note, escaped (never a mention), or nothing."""
    return f" — “{quote(actor.note, incident_id, LINE_FIELD_MAX)}”" if actor.note else ""


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block of ``text``, fitted to a section's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text)}}


def single_section(text: str) -> SlackMessage:
    """A message of one section: ``text`` fitted to a message's and to a section's limit."""
    return SlackMessage(fit(text, SLACK_TEXT_MAX), [section(text)])


def buttons(incident_id: str, episode: int, *, manager: bool = False) -> dict[str, Any]:
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
