"""``sevflow dlq list|replay``: what the sinks could not deliver, and sending it again; with
``--quarantine``, the input records the worker set aside as poison (streams/quarantine.py)."""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TextIO, TypeVar

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import count
from sevflow.problems import store_problem

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sevflow.admin import Who

__all__ = ["NAMES", "add_parsers", "run", "run_dlq"]

NAMES = ("dlq",)

T = TypeVar("T")


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    dlq = sub.add_parser("dlq", help="list or replay notifications the sinks could not deliver")
    actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show dead letters (sink, reason, incident, event)")
    listing.add_argument("--sink", help="only this sink (pagerduty, slack, statuspage, ...)")
    listing.add_argument(
        "--quarantine",
        action="store_true",
        help="the worker's quarantined input records instead (alerts and commands it can never "
        "apply: position, error, reason)",
    )
    listing.add_argument("--source", help="with --quarantine: only records of this source topic")
    listing.add_argument(
        "--limit",
        type=count,
        default=100,
        help="the newest this many, 1 or more (default 100)",
    )
    replay = actions.add_parser(
        "replay",
        help="send dead letters again, each followed by its incident's later events from the "
        "incident store (what was delivered already is not sent twice)",
    )
    replay.add_argument("--sink", help="only this sink")
    replay.add_argument(
        "--quarantine",
        action="store_true",
        help="send the worker's quarantined records back to their source topic, byte for byte "
        "(after fixing their cause; one still poison is quarantined again)",
    )
    replay.add_argument("--source", help="with --quarantine: only records of this source topic")
    replay.add_argument(
        "--position",
        action="append",
        dest="positions",
        metavar="TOPIC[PARTITION]@OFFSET",
        help="with --quarantine: only the records read at these positions (as listed)",
    )
    replay.add_argument(
        "--event", action="append", dest="events", metavar="EVENT_ID", help="only these events"
    )


async def _audited(
    settings: Settings, replay: "Callable[[AsyncEngine, Who, datetime], Awaitable[T]]"
) -> T:
    """Run ``replay`` as the login user, recorded in the audit log of the incident store."""
    from sevflow.admin import Who
    from store.db import async_engine

    engine = async_engine(settings.sqlalchemy_url())
    try:
        return await replay(engine, Who(getpass.getuser(), "cli"), utc_now())
    finally:
        await engine.dispose()


def _run_quarantine(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from sevflow.admin import replay_quarantined
    from streams.quarantine import quarantine_list

    if args.dlq_action == "replay":
        sent = asyncio.run(
            _audited(
                settings,
                lambda engine, who, now: replay_quarantined(
                    settings, engine, source=args.source, positions=args.positions, who=who, now=now
                ),
            )
        )
        print(f"replayed {sent} quarantined records to their source topics", file=out)
        return 0
    records = quarantine_list(settings, source=args.source, limit=args.limit)
    if not records:
        print("no quarantined records", file=out)
        return 0
    row = "{:<20} {:<36} {:<16} {}"
    print(row.format("QUARANTINED AT (UTC)", "SOURCE", "ERROR", "REASON"), file=out)
    for record in records:
        print(
            row.format(
                f"{record.quarantined_at:%Y-%m-%d %H:%M:%S}",
                str(record.source),
                record.error,
                record.reason,
            ),
            file=out,
        )
    return 0


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow dlq …``."""
    return run_dlq(settings, args, out if out is not None else sys.stdout)


def run_dlq(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import SQLAlchemyError

    from sinks.dlq import StoreUnreadable

    try:
        if args.quarantine:
            return _run_quarantine(settings, args, out)
        if args.dlq_action == "list":
            return _list_letters(settings, args, out)
        return _replay_letters(settings, args, out)
    except StoreUnreadable as exc:
        print(f"sevflow dlq: nothing replayed: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the replay was sent; its audit record could not be written
        print(
            f"sevflow dlq: replayed, but not recorded in the audit log: {store_problem(exc)}",
            file=sys.stderr,
        )
        return 1
    except (KafkaError, OSError, TimeoutError) as exc:
        print(
            f"sevflow dlq: Kafka at {settings.kafka_bootstrap} is not reachable: {exc}", file=sys.stderr
        )
        return 1


def _list_letters(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from sinks.dlq import dlq_list

    letters = dlq_list(settings, sink=args.sink, limit=args.limit)
    if not letters:
        print("no dead letters", file=out)
        return 0
    row = "{:<20} {:<11} {:<9} {:<21} {:<37} {}"
    print(
        row.format("FAILED AT (UTC)", "SINK", "RETRYABLE", "INCIDENT", "EVENT", "REASON"),
        file=out,
    )
    for letter in letters:
        print(
            row.format(
                f"{letter.failed_at:%Y-%m-%d %H:%M:%S}",
                letter.sink,
                "yes" if letter.retryable else "no",
                letter.incident_id or "-",
                letter.event_id or "-",
                letter.reason,
            ),
            file=out,
        )
    return 0


def _replay_letters(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from sevflow.admin import replay_dead_letters

    replayed = asyncio.run(
        _audited(
            settings,
            lambda engine, who, now: replay_dead_letters(
                settings, engine, sink=args.sink, event_ids=args.events, who=who, now=now
            ),
        )
    )
    print(
        f"replayed {replayed.letters} dead letters, followed by {replayed.later} later events "
        "of their incidents",
        file=out,
    )
    return 0
