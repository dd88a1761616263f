"""``sevflow postmortem <id>``: the playbook's blameless postmortem template, filled from the
incident's events. Exit statuses as in :mod:`sevflow.commands.common`."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands.common import EXIT_FAILURE, EXIT_OK, incident_id, with_engine
from sevflow.commands.report import policy_targets

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["NAMES", "add_parsers", "postmortem", "run"]

NAMES = ("postmortem",)


def add_parsers(subparsers: Any) -> None:
    postmortem_parser = subparsers.add_parser(
        "postmortem", help="write the blameless postmortem template filled from an incident"
    )
    postmortem_parser.add_argument(
        "incident_id", type=incident_id, metavar="INCIDENT", help="the incident id (inc_…)"
    )
    postmortem_parser.add_argument(
        "--output", "-o", type=Path, help="write to this file (default: stdout)"
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
    return postmortem(settings, args, out=out, err=err, now=now)


def postmortem(
    settings: Settings,
    options: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    now: Clock = utc_now,
) -> int:
    """``sevflow postmortem <id>``: the playbook's template filled from the incident's events."""
    from analytics.incidents import load_incident
    from analytics.postmortem import render_postmortem

    targets = policy_targets(settings, "postmortem", err)
    if targets is None:
        return EXIT_FAILURE

    async def work(engine: "AsyncEngine") -> int:
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

    return with_engine(settings, "postmortem", err, work)
