"""``sevflow audit [--since WHEN] [--action ACTION]``: the audit log (store/audit.py), oldest first.

Every value is printed with control characters escaped: a note or a matcher is the caller's
text, and must not move the terminal's cursor or forge a line of its own.
"""

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from models.audit import ACTIONS
from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import count, shown
from sevflow.commands.maintenance import parse_when
from sevflow.problems import store_problem

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("audit",)


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "audit",
        help="who did what dangerous thing: maintenance windows, replays, manual acks/resolves",
    )
    parser.add_argument(
        "--since",
        help="from this time: an RFC 3339 time, or how long ago: 30m / 2h / 7d (also written "
        "--since=-7d; default: all)",
    )
    parser.add_argument(
        "--action",
        help=f"only this action or family ({', '.join(ACTIONS)}; e.g. maintenance)",
    )
    parser.add_argument("--limit", type=count, default=1000, help="the newest this many (default 1000)")


def _since(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    ago = text.removeprefix("-")
    if text.startswith("-") or (
        ago[-1:] in ("m", "h", "d") and ago[:-1].isascii() and ago[:-1].isdigit()
    ):
        # how long ago: 7d as incidents list and report take it, or -7d (written --since=-7d,
        # since argparse reads a bare -7d as an option)
        try:
            return now - (parse_when("+" + ago, now) - now)
        except (OverflowError, ValueError):  # (before year 1, or beyond the calendar)
            raise ValueError(f"{text!r} is too far in the past") from None
    return parse_when(text, now)


async def _run(settings: Settings, args: argparse.Namespace, now: datetime, out: TextIO) -> int:
    from store import audit
    from store.db import async_engine

    engine = async_engine(settings.sqlalchemy_url())
    try:
        entries = await audit.listing(
            engine, since=_since(args.since, now), action=args.action, limit=args.limit
        )
    finally:
        await engine.dispose()
    if not entries:
        print("no audit entries", file=out)
        return 0
    row = "{:<20} {:<22} {:<24} {:<20} {}"
    print(row.format("AT (UTC)", "ACTION", "ACTOR (VIA)", "TARGET", "DETAILS"), file=out)
    for e in entries:
        details = json.dumps(e.details, sort_keys=True, ensure_ascii=False)
        note = f" note={json.dumps(e.note, ensure_ascii=False)}" if e.note else ""
        print(
            row.format(
                f"{e.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                shown(e.action),
                shown(f"{e.actor} ({e.via})"),
                shown(e.target or "-"),
                shown(details + note),
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
    """Run ``sevflow audit …``."""
    from sqlalchemy.exc import SQLAlchemyError

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return asyncio.run(_run(settings, args, now(), out))
    except ValueError as exc:
        print(f"sevflow audit: {exc}", file=err)
        return 2
    except SQLAlchemyError as exc:
        print(f"sevflow audit: cannot read the incident store: {store_problem(exc)}", file=err)
        return 1
