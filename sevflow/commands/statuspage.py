"""``sevflow statuspage publish ID --title … --body …``: put an incident on the public status page
with words the operator writes (the only way a held security or data-breach incident gets there).

The incident is looked up first (exit 1 when there is none; 0 without queuing when it is
published with these words already); the ``publish`` command then goes through the commands
topic like ``ack`` and ``resolve``, and the worker applies it once (its id is derived from the
incident and the words). A store that cannot be read does not stop it: the command is queued
unchecked and stderr says so.
"""

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from models.clock import Clock, utc_now
from models.events import Actor
from models.incident import PUBLIC_BODY_MAX, PUBLIC_TITLE_MAX, Command, public_words_problem
from models.settings import Settings
from sevflow.commands.common import StoreUnreadable, incident_id, login, read_incident

if TYPE_CHECKING:
    from receiver.callbacks import CommandSink

__all__ = ["NAMES", "add_parsers", "publish", "run"]

NAMES = ("statuspage",)


def _words(limit: int, what: str) -> Callable[[str], str]:
    """An argparse type: the words stripped, refused when empty or over ``limit``."""

    def parse(value: str) -> str:
        value = value.strip()
        if not value:
            raise argparse.ArgumentTypeError(f"the public {what} must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"the public {what} is at most {limit} characters")
        problem = public_words_problem(value, "") if what == "title" else public_words_problem("", value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"the public {what} {problem.partition(': ')[2]}")
        return value

    return parse


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``statuspage publish`` on the ``sevflow`` parser."""
    statuspage = sub.add_parser("statuspage", help="the public status page")
    actions = statuspage.add_subparsers(dest="statuspage_command", required=True, metavar="ACTION")
    parser = actions.add_parser(
        "publish",
        help="publish an incident (a held security incident too) with your public title and text",
    )
    parser.add_argument("incident_id", type=incident_id, help="the incident id (inc_…)")
    parser.add_argument(
        "--title",
        required=True,
        type=_words(PUBLIC_TITLE_MAX, "title"),
        help=f"the public title (at most {PUBLIC_TITLE_MAX} characters)",
    )
    parser.add_argument(
        "--body",
        required=True,
        type=_words(PUBLIC_BODY_MAX, "text"),
        help=f"the public text (at most {PUBLIC_BODY_MAX} characters)",
    )
    parser.add_argument("--by", default=None, help="who (default: your login name)")


def publish(
    settings: Settings,
    incident_id: str,
    title: str,
    body: str,
    *,
    by: str | None,
    out: TextIO,
    err: TextIO | None = None,
    publisher: "CommandSink | None" = None,
) -> int:
    """Check the incident, then queue the ``publish`` command; the exit status (0 queued or
    already published with these words, 1 no such incident or Kafka did not take it).
    ``publisher``: the commands topic's producer (tests pass a recorder)."""
    from aiokafka.errors import KafkaError

    from models.notes import clean_note
    from receiver.commands import CommandPublisher
    from receiver.statuspage_api import publish_command

    err = err if err is not None else sys.stderr
    shown = _check(settings, incident_id, (title, body), out, err)
    if isinstance(shown, int):
        return shown
    command = publish_command(
        # The login name acts (as for every CLI command); ``by`` is only a note shown beside it.
        incident_id,
        title,
        body,
        Actor(via="cli", name=login(), note=clean_note(by)),
        utc_now(),
        "cli",
        shown,
    )

    async def send() -> Command:
        sink = publisher or CommandPublisher(settings.kafka_bootstrap, settings.commands_topic)
        try:
            await sink.publish(command)
        finally:
            if isinstance(sink, CommandPublisher):
                await sink.close()
        return command

    try:
        asyncio.run(send())
    except (KafkaError, TimeoutError, OSError) as exc:
        print(
            f"sevflow statuspage publish: could not queue the command: Kafka: {type(exc).__name__}",
            file=err,
        )
        return 1
    print(f"publish of {incident_id} on the status page queued (command {command.command_id})", file=out)
    return 0


def _check(
    settings: Settings, incident_id: str, words: tuple[str, str], out: TextIO, err: TextIO
) -> int | tuple[str | None, str | None]:
    """The exit status when there is nothing to queue (no such incident; published with these
    words already), else the words the page shows now. An unreadable store lets the command
    through unchecked, as if nothing were shown."""
    try:
        incident = read_incident(settings, incident_id)
    except StoreUnreadable as exc:
        print(
            f"sevflow statuspage publish: cannot check {incident_id} in the incident store "
            f"({exc}); queuing the command unchecked",
            file=err,
        )
        return (None, None)
    if incident is None:
        print(f"sevflow statuspage publish: no incident {incident_id}", file=err)
        return 1
    shown = (incident.status_page_title, incident.status_page_body)
    if shown == words:
        print(f"{incident_id} is published with these words already: nothing to do", file=out)
        return 0
    return shown


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow statuspage …``."""
    out = out if out is not None else sys.stdout
    return publish(settings, args.incident_id, args.title, args.body, by=args.by, out=out, err=err)
