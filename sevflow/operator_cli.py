"""Operator commands: ``sevflow incidents list|show``, ``sevflow report``, ``sevflow postmortem``.

Each command reads (never writes) the incident store, or for ``report --from-topic`` the
``incident-events`` topic alone, prints a readable table on stdout and returns an exit status:

- 0: done;
- 1: the answer could not be produced (no such incident, store or Kafka unreachable, no tables);
- 2: an option is invalid (argparse's own usage errors exit 2 as well).

Errors go to stderr as one line naming the command and the problem; a report over a big topic
prints its progress on stderr too, so stdout stays the report alone.

Wiring (``sevflow/cli.py``)::

    operator_cli.add_operator_commands(sub)         # after the other sub-parsers
    if (status := operator_cli.run_operator_command(settings, args)) is not None:
        return status
"""

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from analytics.database import load_incident_times
from analytics.figures import (
    IncidentTimes,
    ResponseTargets,
    compute_report,
    rebuild_times,
)
from analytics.incidents import MAX_PAGE_SIZE, IncidentFilter, find_incidents, load_incident
from analytics.postmortem import render_postmortem
from analytics.text import render_detail, render_incidents, render_report
from analytics.topic import TopicError, read_events
from models.clock import Clock, utc_now
from models.events import IncidentState
from models.settings import Settings
from models.severity import Severity
from store.db import UnsupportedDatabaseError, async_engine
from streams.escalation import PolicyError, load_policy

__all__ = [
    "COMMANDS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_operator_commands",
    "incidents_list",
    "incidents_show",
    "parse_time",
    "postmortem",
    "report",
    "run_operator_command",
    "store_problem",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

COMMANDS = ("incidents", "report", "postmortem")

T = TypeVar("T")

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class _OptionError(ValueError):
    """An option value that cannot be used (exit 2)."""


def parse_time(value: str, now: datetime) -> datetime:
    """An instant from an option: RFC 3339 / ISO 8601 (``2026-11-27``, ``2026-11-27T14:30Z``;
    no zone means UTC) or an age relative to ``now`` (``30m``, ``24h``, ``7d``, ``2w``)."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    try:
        if relative:
            return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a time (2026-11-27T14:30Z) nor an age (30m, 24h, 7d)"
            ) from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        # An age beyond timedelta's range, or a time that leaves datetime's years 1-9999 in UTC.
        raise ValueError(
            f"{value!r} is out of range (times and ages must stay within the years 1-9999 UTC)"
        ) from None


def _positive_hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {value!r}") from None
    if not 0 < hours < 24 * 365:
        raise argparse.ArgumentTypeError("must be more than 0 and less than a year of hours")
    return hours


def _add_window(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--since", metavar="TIME", help=f"only {what} opened at or after TIME (ISO time or age: 7d)"
    )
    parser.add_argument("--until", metavar="TIME", help=f"only {what} opened before TIME")


def add_operator_commands(subparsers: Any) -> None:
    """Add ``incidents``, ``report`` and ``postmortem`` to sevflow's sub-command parsers."""
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
    _add_window(listing, "incidents")
    listing.add_argument(
        "--limit", type=int, default=50, help=f"at most this many rows (1-{MAX_PAGE_SIZE}, default 50)"
    )
    show = actions.add_parser("show", help="one incident with its timeline and alerts")
    show.add_argument("incident_id", metavar="INCIDENT", help="the incident id (inc_…)")

    report_parser = subparsers.add_parser(
        "report", help="MTTA, MTTR and SLA compliance per SEV (mean, median, p90)"
    )
    report_parser.add_argument(
        "--from-topic",
        action="store_true",
        help="compute from the incident-events topic alone instead of the incident store",
    )
    report_parser.add_argument("--topic", help="the topic to read (default: SEVFLOW_EVENTS_TOPIC)")
    report_parser.add_argument("--team", help="only incidents of this team (README: Teams)")
    _add_window(report_parser, "incidents")
    report_parser.add_argument(
        "--sev4-target-hours",
        type=_positive_hours,
        default=None,
        metavar="HOURS",
        help="judge SEV4 by this fixed number of hours instead of the playbook's 'next business "
        "day' (default: the close of the next business day, by the business hours of the "
        "escalation policy, SEVFLOW_ESCALATION_POLICY_FILE, else Mon-Fri 09:00-17:00 UTC)",
    )

    postmortem_parser = subparsers.add_parser(
        "postmortem", help="write the blameless postmortem template filled from an incident"
    )
    postmortem_parser.add_argument("incident_id", metavar="INCIDENT", help="the incident id (inc_…)")
    postmortem_parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (default: stdout)"
    )


def run_operator_command(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int | None:
    """Run the command in ``args`` if it is one of this module's; None when it is not."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    command = getattr(args, "command", None)
    if command == "incidents":
        if args.incidents_command == "list":
            return incidents_list(settings, args, out=out, err=err, now=now)
        return incidents_show(settings, args, out=out, err=err)
    if command == "report":
        return report(settings, args, out=out, err=err, now=now)
    if command == "postmortem":
        return postmortem(settings, args, out=out, err=err, now=now)
    return None


def _with_engine(
    settings: Settings, name: str, err: TextIO, work: Callable[[AsyncEngine], Coroutine[Any, Any, T]]
) -> T | int:
    """Run ``work`` on an engine of the configured store; a store error becomes exit status 1."""

    async def main() -> T:
        engine = async_engine(settings.sqlalchemy_url())
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow {name}: {exc}", file=err)
    except SQLAlchemyError as exc:
        print(f"sevflow {name}: cannot read the incident store: {store_problem(exc)}", file=err)
    return EXIT_FAILURE


def store_problem(exc: SQLAlchemyError) -> str:
    """The driver's first line (never the URL, which may carry a password), with a hint."""
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    if "no such table" in first or ("relation" in first and "does not exist" in first):
        return f"{first} (run `sevflow init-db` first)"
    return first


def _window(options: argparse.Namespace, now: datetime) -> tuple[datetime | None, datetime | None]:
    try:
        since = parse_time(options.since, now) if options.since else None
        until = parse_time(options.until, now) if options.until else None
    except ValueError as exc:
        raise _OptionError(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise _OptionError("--since must be before --until")
    return since, until


def incidents_list(
    settings: Settings,
    options: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    now: Clock = utc_now,
) -> int:
    """``sevflow incidents list``: matching incidents, newest first."""
    try:
        since, until = _window(options, now())
        if not 1 <= options.limit <= MAX_PAGE_SIZE:
            raise _OptionError(f"--limit must be between 1 and {MAX_PAGE_SIZE}")
    except _OptionError as exc:
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

    async def work(engine: AsyncEngine) -> int:
        page = await find_incidents(engine, criteria, limit=options.limit)
        if not page.incidents:
            print("no incidents match", file=out)
            return EXIT_OK
        print(render_incidents(page.incidents), file=out)
        if page.next_cursor is not None:
            print(f"(first {options.limit} shown; raise --limit or narrow the filters)", file=err)
        return EXIT_OK

    return _with_engine(settings, "incidents list", err, work)


def incidents_show(settings: Settings, options: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """``sevflow incidents show <id>``: fields, timeline and alerts of one incident."""

    async def work(engine: AsyncEngine) -> int:
        detail = await load_incident(engine, options.incident_id)
        if detail is None:
            print(f"sevflow incidents show: no incident {options.incident_id}", file=err)
            return EXIT_FAILURE
        print(render_detail(detail), file=out)
        return EXIT_OK

    return _with_engine(settings, "incidents show", err, work)


def _progress(err: TextIO) -> Callable[[int, int], None]:
    def show(read: int, total: int) -> None:
        share = f" ({read / total:.0%})" if total else ""
        print(f"sevflow report: read {read} of {total} records{share}", file=err, flush=True)

    return show


def _policy_targets(settings: Settings, command: str, err: TextIO) -> ResponseTargets | None:
    """The playbook's response targets, SEV4's judged by the calendar the escalation engine
    uses (the playbook's without a policy file); None (said on ``err``) when the policy is bad."""
    try:
        calendar = load_policy(settings.escalation_policy_file, settings.playbook_times()).business_hours
    except PolicyError as exc:
        print(f"sevflow {command}: escalation policy {exc}", file=err)
        return None
    return ResponseTargets(calendar=calendar)


def _of_team(times: Sequence[IncidentTimes], team: str | None) -> list[IncidentTimes]:
    """The incidents of ``team`` (all when None): the team each incident's events carry."""
    return [t for t in times if team is None or t.team == team]


def _team_note(team: str | None) -> str:
    return f", team {team} only" if team is not None else ""


def report(
    settings: Settings,
    options: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    now: Clock = utc_now,
) -> int:
    """``sevflow report``: response figures per SEV from the store, or ``--from-topic``."""
    at = now()
    try:
        since, until = _window(options, at)
    except _OptionError as exc:
        print(f"sevflow report: {exc}", file=err)
        return EXIT_USAGE
    if options.sev4_target_hours is not None:
        targets: ResponseTargets | None = ResponseTargets(sev4_hours=options.sev4_target_hours)
    else:
        targets = _policy_targets(settings, "report", err)
    if targets is None:
        return EXIT_FAILURE
    if options.from_topic:
        topic = options.topic or settings.events_topic
        try:
            read = asyncio.run(read_events(settings.kafka_bootstrap, topic, progress=_progress(err)))
        except TopicError as exc:
            print(f"sevflow report: {exc}", file=err)
            return EXIT_FAILURE
        rebuilt = rebuild_times(read.events, since=since, until=until)
        skipped = {**read.skipped, **rebuilt.skipped}
        result = compute_report(_of_team(rebuilt.times, options.team), targets, at, skipped=skipped)
        print(render_report(result, source=f"topic {topic}{_team_note(options.team)}"), file=out)
        return EXIT_OK

    async def work(engine: AsyncEngine) -> int:
        times = await load_incident_times(engine, since=since, until=until)
        result = compute_report(_of_team(times, options.team), targets, at)
        print(render_report(result, source=f"incident store{_team_note(options.team)}"), file=out)
        return EXIT_OK

    return _with_engine(settings, "report", err, work)


def postmortem(
    settings: Settings,
    options: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    now: Clock = utc_now,
) -> int:
    """``sevflow postmortem <id>``: the playbook's template filled from the incident's events."""
    targets = _policy_targets(settings, "postmortem", err)
    if targets is None:
        return EXIT_FAILURE

    async def work(engine: AsyncEngine) -> int:
        detail = await load_incident(engine, options.incident_id)
        if detail is None:
            print(f"sevflow postmortem: no incident {options.incident_id}", file=err)
            return EXIT_FAILURE
        document = render_postmortem(detail.incident, detail.timeline, now(), targets)
        if options.output is None:
            out.write(document)
            return EXIT_OK
        try:
            options.output.write_text(document, encoding="utf-8")
        except OSError as exc:
            print(f"sevflow postmortem: cannot write {options.output}: {exc.strerror}", file=err)
            return EXIT_FAILURE
        print(f"postmortem of {options.incident_id} written to {options.output}", file=err)
        return EXIT_OK

    return _with_engine(settings, "postmortem", err, work)
