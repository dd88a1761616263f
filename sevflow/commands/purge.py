"""``sevflow purge``: forget incidents' personal data past the retention (store/retention.py).

A dry run unless ``--yes``: deleting cannot be undone, so the command first says what it would
delete (rows per table) and deletes only when asked again with ``--yes``.
"""

import argparse
import re
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import with_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from store.retention import PurgeCounts

__all__ = ["NAMES", "add_parsers", "parse_age", "run", "run_purge"]

NAMES = ("purge",)

_AGE = re.compile(r"([0-9]{1,6})([dh])")


def parse_age(value: str) -> timedelta:
    """``400d`` or ``36h`` → a timedelta (argparse type)."""
    matched = _AGE.fullmatch(value.strip())
    if not matched:
        raise argparse.ArgumentTypeError(f"{value!r}: use days or hours, e.g. 400d or 36h")
    number, unit = int(matched.group(1)), matched.group(2)
    return timedelta(days=number) if unit == "d" else timedelta(hours=number)


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "purge",
        help="delete resolved incidents' alerts, events and delivery logs past the retention "
        "(a dry run unless --yes)",
    )
    parser.add_argument(
        "--older-than",
        type=parse_age,
        metavar="AGE",
        help="incidents resolved longer ago than this (400d, 36h); default SEVFLOW_RETENTION_DAYS",
    )
    parser.add_argument(
        "--incidents",
        action="store_true",
        help="also delete the incident rows and the events `sevflow report` reads",
    )
    parser.add_argument("--yes", action="store_true", help="delete (without it: only count)")


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow purge``."""
    out = out if out is not None else sys.stdout
    return run_purge(settings, args, now=now(), out=out, err=err if err is not None else sys.stderr)


def run_purge(
    settings: Settings,
    options: argparse.Namespace,
    *,
    now: datetime | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    age: timedelta | None = options.older_than
    if age is None:
        if settings.retention_days == 0:
            print("sevflow purge: retention is off (SEVFLOW_RETENTION_DAYS=0); nothing to do", file=out)
            return 0
        age = timedelta(days=settings.retention_days)
    try:
        cutoff = (now or utc_now()) - age
    except OverflowError:  # before the year 1: every incident is younger
        print(f"sevflow purge: --older-than {age.days}d reaches before the year 1", file=err)
        return 2

    from store.retention import purge

    async def work(engine: "AsyncEngine") -> "PurgeCounts":
        return await purge(engine, cutoff, incidents_too=options.incidents, dry_run=not options.yes)

    counts = with_engine(settings, "purge", err, work)
    if isinstance(counts, int):
        return counts
    verb = "deleted" if options.yes else "would delete"
    print(f"incidents resolved before {cutoff.isoformat(timespec='seconds')}: {verb}", file=out)
    for table, rows in counts.rows.items():
        print(f"  {table:<22} {rows}", file=out)
    if not options.yes:
        print("dry run: run again with --yes to delete", file=out)
    return 0
