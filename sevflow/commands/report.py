"""``sevflow report``: MTTA, MTTR and SLA compliance per SEV, from the incident store or, with
``--from-topic``, the ``incident-events`` topic alone. A report over a big topic prints its
progress on stderr, so stdout stays the report alone. Exit statuses as in
:mod:`sevflow.commands.common`."""

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    OptionError,
    add_window,
    window,
    with_engine,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from analytics.figures import ResponseTargets
    from analytics.incident_times import IncidentTimes

__all__ = ["NAMES", "add_parsers", "policy_targets", "report", "run"]

NAMES = ("report",)


def _positive_hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {value!r}") from None
    if not 0 < hours < 24 * 365:
        raise argparse.ArgumentTypeError("must be more than 0 and less than a year of hours")
    return hours


def add_parsers(subparsers: Any) -> None:
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
    add_window(report_parser, "incidents")
    report_parser.add_argument(
        "--sev4-target-hours",
        type=_positive_hours,
        default=None,
        metavar="HOURS",
        help="judge SEV4 by this fixed number of hours instead of the playbook's 'next business "
        "day' (default: the close of the next business day, by the business hours of the "
        "escalation policy, SEVFLOW_ESCALATION_POLICY_FILE, else Mon-Fri 09:00-17:00 UTC)",
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
    return report(settings, args, out=out, err=err, now=now)


def _progress(err: TextIO) -> Callable[[int, int], None]:
    def show(read: int, total: int) -> None:
        share = f" ({read / total:.0%})" if total else ""
        print(f"sevflow report: read {read} of {total} records{share}", file=err, flush=True)

    return show


def policy_targets(settings: Settings, command: str, err: TextIO) -> "ResponseTargets | None":
    """The response targets the escalation engine judges by: the policy's acknowledge targets
    (the playbook's without a policy file) and calendars, a team's own for its incidents;
    None (said on ``err``) when the policy or the teams file is bad."""
    from analytics.figures import ResponseTargets
    from models.teams import TeamsError
    from sevflow.teams import load_teams
    from streams.escalation import PolicyError, load_policy

    try:
        teams = load_teams(settings, resolve=False)  # (their business hours: no routing key read)
        policy = load_policy(settings.escalation_policy_file, settings.playbook_times(), teams=teams)
    except TeamsError as exc:
        print(f"sevflow {command}: teams file {exc}", file=err)
        return None
    except PolicyError as exc:
        print(f"sevflow {command}: escalation policy {exc}", file=err)
        return None
    return ResponseTargets.of_policy(policy)


def of_team(times: "Sequence[IncidentTimes]", team: str | None) -> "list[IncidentTimes]":
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
    from analytics.database import load_incident_times
    from analytics.figures import compute_report
    from analytics.text import render_report

    at = now()
    try:
        since, until = window(options, at)
    except OptionError as exc:
        print(f"sevflow report: {exc}", file=err)
        return EXIT_USAGE
    targets = policy_targets(settings, "report", err)
    if targets is None:
        return EXIT_FAILURE
    if options.sev4_target_hours is not None:  # (SEV4's alone: the others stay the policy's)
        targets = dataclasses.replace(targets, sev4_hours=options.sev4_target_hours)
    if options.from_topic:
        return _from_topic(settings, options, targets, out=out, err=err, span=(since, until), at=at)

    async def work(engine: "AsyncEngine") -> int:
        times = await load_incident_times(engine, since=since, until=until)
        result = compute_report(of_team(times, options.team), targets, at, team=options.team)
        print(render_report(result, source=f"incident store{_team_note(options.team)}"), file=out)
        return EXIT_OK

    return with_engine(settings, "report", err, work)


def _from_topic(
    settings: Settings,
    options: argparse.Namespace,
    targets: "ResponseTargets",
    *,
    out: TextIO,
    err: TextIO,
    span: tuple[datetime | None, datetime | None],
    at: datetime,
) -> int:
    """``report --from-topic``: the figures rebuilt from the incident-events topic alone."""
    from analytics.figures import compute_report
    from analytics.incident_times import rebuild_times
    from analytics.text import render_report
    from analytics.topic import TopicError, read_events

    topic = options.topic or settings.events_topic
    try:
        read = asyncio.run(read_events(settings.kafka_bootstrap, topic, progress=_progress(err)))
    except TopicError as exc:
        print(f"sevflow report: {exc}", file=err)
        return EXIT_FAILURE
    since, until = span
    rebuilt = rebuild_times(
        read.events, since=since, until=until, passed_over=read.passed_over, unread=read.unread
    )
    skipped = {**read.skipped, **rebuilt.skipped}
    result = compute_report(
        of_team(rebuilt.times, options.team), targets, at, skipped=skipped, team=options.team
    )
    print(render_report(result, source=f"topic {topic}{_team_note(options.team)}"), file=out)
    return EXIT_OK
