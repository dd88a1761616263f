"""``sevflow incidents list|show``: the incident store as a readable table, or one incident with its
timeline and alerts. Reads, never writes; exit statuses as in :mod:`sevflow.commands.common`.

Both read through the store's driver (:func:`~sevflow.commands.common.with_reads`), not SQLAlchemy:
importing it was most of the command's run (bench/README.md, the CLI)."""

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from models.clock import Clock, utc_now
from models.events import IncidentState
from models.settings import Settings
from models.severity import Severity
from sevflow.commands.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    OptionError,
    add_window,
    incident_id,
    window,
    with_reads,
)

if TYPE_CHECKING:
    from store.direct_reads import DirectReads

__all__ = ["NAMES", "add_parsers", "incidents_list", "incidents_show", "run"]

NAMES = ("incidents",)

#: ``analytics.incidents.MAX_PAGE_SIZE``, for the parser's help (tests/unit/test_cli.py pins them
#: equal): importing it from there brings SQLAlchemy into every command's parser.
MOST_ROWS = 500


def add_parsers(subparsers: Any) -> None:
    """``incidents list`` and ``incidents show``."""
    incidents = subparsers.add_parser("incidents", help="list incidents or show one")
    actions = incidents.add_subparsers(dest="incidents_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="incidents as a table, newest first")
    listing.add_argument(
        "--state", choices=[s.value for s in IncidentState], help="only incidents in this state"
    )
    listing.add_argument(
        "--severity", "--sev", choices=[s.value for s in Severity], help="only this severity"
    )
    listing.add_argument("--service", help="only incidents affecting this service")
    listing.add_argument("--team", help="only incidents of this team (README: Teams)")
    add_window(listing, "incidents")
    listing.add_argument(
        "--limit", type=int, default=50, help=f"at most this many rows (1-{MOST_ROWS}, default 50)"
    )
    show = actions.add_parser("show", help="one incident with its timeline and alerts")
    show.add_argument(
        "incident_id", type=incident_id, metavar="INCIDENT", help="the incident id (inc_…)"
    )


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if args.incidents_command == "list":
        return incidents_list(settings, args, out=out, err=err, now=now)
    return incidents_show(settings, args, out=out, err=err)


def incidents_list(
    settings: Settings,
    options: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    now: Clock = utc_now,
) -> int:
    """``sevflow incidents list``: matching incidents, newest first."""
    from analytics.incidents import MAX_PAGE_SIZE, IncidentFilter, read_incidents
    from analytics.text import render_incidents

    try:
        since, until = window(options, now())
        if not 1 <= options.limit <= MAX_PAGE_SIZE:
            raise OptionError(f"--limit must be between 1 and {MAX_PAGE_SIZE}")
    except OptionError as exc:
        print(f"sevflow incidents list: {exc}", file=err)
        return EXIT_USAGE
    criteria = IncidentFilter(
        state=IncidentState(options.state) if options.state else None,
        severity=Severity(options.severity) if options.severity else None,
        service=options.service,
        team=options.team,
        since=since,
        until=until,
    )

    def work(reads: "DirectReads") -> int:
        page = read_incidents(reads, criteria, limit=options.limit)
        if not page.incidents:
            print("no incidents match", file=out)
            return EXIT_OK
        print(render_incidents(page.incidents), file=out)
        if page.next_cursor is not None:
            print(f"(first {options.limit} shown; raise --limit or narrow the filters)", file=err)
        return EXIT_OK

    return with_reads(settings, "incidents list", err, work)


def incidents_show(settings: Settings, options: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """``sevflow incidents show <id>``: fields, timeline and alerts of one incident."""
    from analytics.incidents import read_incident
    from analytics.text import render_detail

    def work(reads: "DirectReads") -> int:
        detail = read_incident(reads, options.incident_id)
        if detail is None:
            print(f"sevflow incidents show: no incident {options.incident_id}", file=err)
            return EXIT_FAILURE
        print(render_detail(detail), file=out)
        return EXIT_OK

    return with_reads(settings, "incidents show", err, work)
