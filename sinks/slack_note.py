"""The Slack message of a note added to an incident's timeline (``note_added``): posted in the
incident's channel, once (the delivery log's step ``note``). The author and the text are shown as
written: Slack's control characters escaped (no mention, link or command), cut to a section's
3,000 characters (a note is at most 2,000: models/timeline_notes.py)."""

from models.events import IncidentEvent
from sinks.limits import SLACK_SECTION_TEXT_MAX, clip_mrkdwn
from sinks.slack_format import SlackMessage, escape

__all__ = ["note_message"]


def note_message(event: IncidentEvent) -> SlackMessage:
    """``:memo: Note from alice (via api): rolled back v2.3``."""
    actor = event.actor
    author = escape(actor.name or actor.via)
    via = f" (via {escape(actor.via)})" if actor.name else ""
    text = clip_mrkdwn(
        f":memo: *Note* from {author}{via}: {escape(event.data.get('text', ''))}", SLACK_SECTION_TEXT_MAX
    )
    return SlackMessage(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
