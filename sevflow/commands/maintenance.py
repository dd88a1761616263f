"""``sevflow maintenance add|list|end``: schedule label-scoped maintenance windows.

Alerts that fire inside a window matching them are recorded but page nobody; when the window ends
the worker handles what still fires as if it had just arrived (models/maintenance.py).
"""

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import shown
from sevflow.problems import store_problem

__all__ = ["NAMES", "add_parsers", "parse_when", "run"]

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sevflow.admin import Who

NAMES = ("maintenance",)

_UNITS = {"m": 60, "h": 3600, "d": 86400}


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut to 32 characters: a caller's 10,000-character
    value is not echoed back whole."""
    return repr(text if len(text) <= 32 else f"{text[:32]}…")


def parse_when(text: str, now: datetime) -> datetime:
    """``now``, ``+30m`` / ``+2h`` / ``+1d``, or an RFC 3339 time with a zone (``Z`` allowed)."""
    if text == "now":
        return now
    if text.startswith("+") and text[-1:] in _UNITS and text[1:-1].isascii() and text[1:-1].isdigit():
        try:
            return now + timedelta(seconds=int(text[1:-1]) * _UNITS[text[-1]])
        except (OverflowError, ValueError):  # beyond timedelta's or datetime's range (year
            # 9999), or more digits than int() reads (4,300): either way, far beyond any window
            raise ValueError(f"{_shown(text)} is too far in the future") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {_shown(text)} (use now, +30m, +2h, +1d or 2026-01-15T14:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{_shown(text)} has no time zone (add Z for UTC)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00
        raise ValueError(f"{_shown(text)} is out of range once converted to UTC") from None


_NOTICE = {"created": "its creation", "ended": "its early end"}


def _announcement(status: str, settings: Settings) -> str:
    """What became of a notice, for the listing."""
    channel = "#" + settings.slack_announce_channel.lstrip("#")
    if status == "announced":
        return f"announced in {channel}"
    if status == "failed":
        return f"NOT announced in {channel}: Slack refused it (see the sinks' log)"
    if settings.slack_token is None:
        return f"NOT announced: SEVFLOW_SLACK_TOKEN is not set, nothing posts to {channel}"
    return f"not announced in {channel} yet (the sinks post it within a minute)"


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    maintenance = sub.add_parser(
        "maintenance", help="schedule maintenance windows: matching alerts page nobody meanwhile"
    )
    actions = maintenance.add_subparsers(dest="maintenance_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="schedule a window")
    add.add_argument(
        "--matcher", "-m", action="append", required=True, dest="matchers",
        help='Alertmanager matcher, e.g. service="checkout" (repeat: all must match)',
    )  # fmt: skip
    add.add_argument("--start", default="now", help="now (default), +30m, +2h or an RFC 3339 time")
    add.add_argument("--end", required=True, help="+2h, or an RFC 3339 time")
    add.add_argument("--comment", default="", help="why (shown in listings)")
    add.add_argument(
        "--force",
        action="store_true",
        help="create a window that matches every alert or lasts over "
        "SEVFLOW_MAINTENANCE_MAX_HOURS (recorded in the audit log)",
    )
    listing = actions.add_parser("list", help="current and future windows")
    listing.add_argument("--all", action="store_true", help="past windows too")
    end = actions.add_parser("end", help="end a window now")
    end.add_argument("window_id")


async def _run(settings: Settings, args: argparse.Namespace, now: datetime, out: TextIO) -> int:
    from sevflow.admin import Who
    from store.db import async_engine

    engine = async_engine(settings.sqlalchemy_url())
    try:
        who = Who(getpass.getuser(), "cli")
        if args.maintenance_action == "add":
            return await _add(engine, settings, args, who, now, out)
        if args.maintenance_action == "end":
            return await _end(engine, args, who, now, out)
        return await _list(engine, settings, args, now, out)
    finally:
        await engine.dispose()


async def _add(
    engine: "AsyncEngine",
    settings: Settings,
    args: argparse.Namespace,
    who: "Who",
    now: datetime,
    out: TextIO,
) -> int:
    from sevflow.admin import create_window, new_window

    window = new_window(
        args.matchers, parse_when(args.start, now), parse_when(args.end, now), args.comment, who
    )
    forced = await create_window(
        engine,
        window,
        force=args.force,
        max_hours=settings.maintenance_max_hours,
        who=who,
        now=now,
    )
    for problem in forced:
        print(f"sevflow maintenance: forced: {problem}", file=sys.stderr)
    print(
        f"{window.id}: {shown(', '.join(window.matchers))} from {window.starts_at:%Y-%m-%d %H:%M} "
        f"to {window.ends_at:%Y-%m-%d %H:%M} UTC",
        file=out,
    )
    return 0


async def _end(
    engine: "AsyncEngine", args: argparse.Namespace, who: "Who", now: datetime, out: TextIO
) -> int:
    from sevflow.admin import end_window

    ended = await end_window(engine, args.window_id, who=who, now=now)
    if ended is None:
        print(f"sevflow maintenance: no window {args.window_id}", file=sys.stderr)
        return 1
    print(f"{ended.id} ends {ended.ends_at:%Y-%m-%d %H:%M:%S} UTC", file=out)
    return 0


async def _list(
    engine: "AsyncEngine", settings: Settings, args: argparse.Namespace, now: datetime, out: TextIO
) -> int:
    from store.maintenance import MaintenanceStore
    from store.notices import NoticeStore

    windows = await MaintenanceStore(engine).listing(since=None if args.all else now)
    if not windows:
        print("no maintenance windows", file=out)
        return 0
    row = "{:<16} {:<17} {:<17} {:<8} {:<40} {}"
    print(row.format("ID", "STARTS (UTC)", "ENDS (UTC)", "STATE", "MATCHERS", "COMMENT"), file=out)
    for w in windows:
        state = (
            "active" if w.starts_at <= now < w.ends_at else ("ended" if w.ends_at <= now else "planned")
        )
        print(
            row.format(
                w.id, f"{w.starts_at:%Y-%m-%d %H:%M}", f"{w.ends_at:%Y-%m-%d %H:%M}", state,
                shown(", ".join(w.matchers)), shown(w.comment),
            ),
            file=out,
        )  # fmt: skip
    for w in windows:
        for problem in w.unreadable():
            print(f"{w.id}: holds nothing, a matcher no longer reads: {problem}", file=out)
    announced = await NoticeStore(engine).states([w.id for w in windows])
    for w in windows:
        for kind, status in announced.get(w.id, []):
            print(f"{w.id}: forced; {_NOTICE[kind]} {_announcement(status, settings)}", file=out)
    return 0


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow maintenance …``."""
    from sqlalchemy.exc import SQLAlchemyError

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return asyncio.run(_run(settings, args, now(), out))
    except (ValueError, ValidationError) as exc:
        reason = (
            "; ".join(
                str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors(include_url=False, include_input=False)
            )
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        print(f"sevflow maintenance: {reason}", file=err)
        return 2
    except SQLAlchemyError as exc:
        problem = store_problem(exc)
        print(f"sevflow maintenance: cannot use the incident store: {problem}", file=err)
        return 1
