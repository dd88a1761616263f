"""``sevflow note <id> "text"``: add a note to an incident's timeline.

Like ``sevflow ack``, the incident is looked up in the store first (none: exit 1; an unreadable
store lets the note through unchecked, said on stderr), then a ``note`` command is published to
the commands topic, exactly as ``POST /api/incidents/{id}/notes`` does
(``Actor(via="cli", name=<the login name>, note=<--by>)``). The worker records it as a
``note_added`` event, once; Slack posts it in the incident's channel. The text is one clean line
of at most 2,000 characters (models/timeline_notes.py); an empty one is exit 2.

Kafka and the store are imported by the functions that use them.
"""

import argparse
import sys
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from models.clock import Clock, utc_now
from models.incident import Command
from models.settings import Settings
from models.timeline_notes import NOTE_TEXT_MAX, note_text
from sevflow.commands.common import StoreUnreadable, incident_id, login, read_incident
from sevflow.commands.queue import cli_command, publish, queue

if TYPE_CHECKING:
    from receiver.callbacks import CommandSink

__all__ = ["NAMES", "add_parsers", "note", "run", "send_note"]

NAMES = ("note",)


async def send_note(
    publisher: "CommandSink",
    incident_id: str,
    text: str,
    *,
    by: str | None,
    note: str | None,
    now: datetime,
    episode: int | None,
) -> Command:
    """Publish one note command from the command line; returns it."""
    command = cli_command(incident_id, "note", by=by, note=note, now=now, episode=episode, text=text)
    return await publish(publisher, command)


def note(
    settings: Settings,
    incident_id: str,
    text: str,
    *,
    by: str | None = None,
    key: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    now: Clock = utc_now,
) -> int:
    """``sevflow note <id> "text"``: exit 0 once Kafka has the note, 1 when there is no such
    incident or Kafka did not confirm it, 2 for an empty or over-long text. ``key``
    (``--idempotency-key``) makes a repeat the same note; without one a key is made, and named
    when Kafka did not confirm the note (it may still be applied: a plain repeat doubled it)."""
    cleaned = note_text(text)
    if cleaned is None or len(" ".join(text.split())) > NOTE_TEXT_MAX:
        print(f"sevflow note: the text must be 1 to {NOTE_TEXT_MAX} characters", file=err)
        return 2
    try:
        incident = read_incident(settings, incident_id)
        if incident is None:
            print(f"sevflow note: no incident {incident_id}", file=err)
            return 1
        episode: int | None = incident.flaps
    except StoreUnreadable as exc:
        print(f"sevflow note: cannot check {incident_id} ({exc}); queuing the note unchecked", file=err)
        episode = None

    key = key or uuid.uuid4().hex
    command = cli_command(
        incident_id, "note", by=login(), note=by, now=now(), episode=episode, key=key, text=cleaned
    )
    retry = f"run the same command with --idempotency-key {key} to retry without doubling it"
    if not queue(settings, command, name="note", what="note", err=err, retry=retry):
        return 1
    print(f"note on {incident_id} queued (command {command.command_id})", file=out)
    return 0


def _key(value: str) -> str:
    """An ``--idempotency-key``: 1 to 128 printable ASCII characters."""
    if not 1 <= len(value) <= 128 or not (value.isascii() and value.isprintable()):
        raise argparse.ArgumentTypeError("1 to 128 printable ASCII characters")
    return value


def add_parsers(sub: Any) -> None:
    """Register ``note`` on the ``sevflow`` parser."""
    parser = sub.add_parser("note", help="add a note to an incident's timeline (and its Slack channel)")
    parser.add_argument("incident_id", type=incident_id, help="the incident id (inc_…)")
    parser.add_argument("text", help=f"the note (one line, at most {NOTE_TEXT_MAX} characters)")
    parser.add_argument(
        "--by", default=None, help="a note on who, shown beside your login name (the author)"
    )
    parser.add_argument(
        "--idempotency-key",
        type=_key,
        default=None,
        help="the same key (with the same text) makes a repeat the same note, applied once: "
        "use the one a failed run names (default: a new key each run)",
    )


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow note``."""
    return note(
        settings,
        args.incident_id,
        args.text,
        by=args.by,
        key=args.idempotency_key,
        out=out if out is not None else sys.stdout,
        err=err if err is not None else sys.stderr,
        now=now,
    )
