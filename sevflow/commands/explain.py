"""``sevflow explain NAME=VALUE…``: which severity rule an alert matches, why, which incident it
joins and which verification probe would verify it (sevflow/explain.py does the work). Exit status
2 on a bad label, rules, teams or probe file."""

import argparse
import sys
from typing import Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("explain",)


def add_parsers(sub: Any) -> None:
    explain = sub.add_parser(
        "explain",
        help="show which severity rule an alert matches, why, which incident it joins and which "
        "verification probe would verify it",
    )
    explain.add_argument("labels", nargs="+", metavar="NAME=VALUE", help="the alert's labels")
    explain.add_argument(
        "--annotation", "-a", action="append", default=[], metavar="NAME=VALUE", help="an annotation"
    )
    explain.add_argument("--group-key", help="Alertmanager's groupKey of the alert's group")


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    from models.classification import RulesError
    from models.teams import TeamsError
    from sevflow.explain import explain, parse_pairs

    try:
        labels = parse_pairs(args.labels, "a label")
        annotations = parse_pairs(args.annotation, "an annotation")
        print(
            explain(settings, labels, annotations, args.group_key),
            file=out if out is not None else sys.stdout,
        )
    except (ValueError, RulesError, TeamsError, OSError) as exc:
        print(f"sevflow explain: {exc}", file=err if err is not None else sys.stderr)
        return 2
    return 0
