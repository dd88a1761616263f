"""A note on an incident's timeline: free text an operator adds through the API
(``POST /api/incidents/{id}/notes``), the CLI (``sevflow note ID "text"``) or the console.

A note is a ``note`` command on the commands topic like an acknowledgement, so it is ordered
with them (keyed by incident) and applied once (its command id in the idempotency log); the
worker records it as a ``note_added`` event (:func:`add_note`) that changes no state. Its text
is one clean line (models/notes.py :func:`clean_note`: no control or format characters) of at
most :data:`NOTE_TEXT_MAX` characters, well within Slack's 3,000 characters of a section. A note
is never refused for an earlier episode: what someone wrote stays true of the incident.
"""

from datetime import datetime

from models.events import EventType
from models.incident import Command, Incident, Outcome, annotate
from models.notes import clean_note

__all__ = ["NOTE_TEXT_MAX", "add_note", "note_text"]

#: The longest note (characters), after cleaning.
NOTE_TEXT_MAX = 2000


def note_text(value: object) -> str | None:
    """``value`` as a note's text: one clean line cut to :data:`NOTE_TEXT_MAX`; None when
    nothing printable is left (refused by the API and the CLI)."""
    return clean_note(value, NOTE_TEXT_MAX)


def add_note(incident: Incident, command: Command, now: datetime) -> Outcome | None:
    """The ``note_added`` event of a ``note`` command (author: the command's actor; ``data``:
    the text); None when the command carries no text to add."""
    text = note_text(command.text) if command.action == "note" else None
    if text is None:
        return None
    return annotate(incident, EventType.NOTE_ADDED, command.actor, now, data={"text": text})
