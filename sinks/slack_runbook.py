"""The incident's runbook as Slack messages for its channel (posted once, the first message
pinned): Markdown turned into mrkdwn sections, a code block cut by a split closed and opened
again, as many messages as Slack's 50 blocks per message need. Pure."""

import re
from typing import Any

from models.events import IncidentSnapshot
from sinks.limits import (
    SLACK_BLOCKS_MAX,
    SLACK_HEADER_TEXT_MAX,
    SLACK_TEXT_MAX,
    clip,
    clip_mrkdwn,
    text_length,
)
from sinks.slack_text import SECTION_TEXT_MAX, SlackMessage, escape, fit

__all__ = ["RUNBOOK_SECTIONS_PER_MESSAGE", "RUNBOOK_SECTION_MAX", "runbook_messages"]

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
        "elements": [{"type": "mrkdwn", "text": fit(" · ".join(notes))}],
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
        messages.append(SlackMessage(fit(fallback, SLACK_TEXT_MAX), blocks))
    return messages
