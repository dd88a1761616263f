"""``sevflow runbooks list|show NAME|match LABEL=VALUE…``: the runbooks the worker would use.

They are read like the worker reads them (the shipped four, then ``SEVFLOW_RUNBOOKS_DIR``), so a
file that does not parse is named here with its line, before a worker refuses to start on it.
``match`` classifies the labels with the severity rules (as ``sevflow explain`` does) and shows the
runbook an incident opened by that alert would get, its commands filled from the labels.
"""

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings

if TYPE_CHECKING:
    from models.runbooks import RunbookSet

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("runbooks",)


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``runbooks list|show|match`` on the ``sevflow`` parser."""
    runbooks = sub.add_parser("runbooks", help='the runbooks by incident type (README "Runbooks")')
    actions = runbooks.add_subparsers(dest="runbooks_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every runbook, in the order they are tried, with its matchers")
    show = actions.add_parser("show", help="one runbook as written (placeholders unfilled)")
    show.add_argument("name", help="the runbook's file name without .md")
    match = actions.add_parser(
        "match", help="the runbook an alert with these labels gets, its commands filled"
    )
    match.add_argument("labels", nargs="+", metavar="NAME=VALUE", help="the alert's labels")
    match.add_argument(
        "--annotation", "-a", action="append", default=[], metavar="NAME=VALUE", help="an annotation"
    )


def _list(runbooks: "RunbookSet", out: TextIO) -> int:
    for runbook in runbooks.runbooks:
        matchers = ", ".join(map(str, runbook.matchers))
        print(f"{runbook.name}  (order {runbook.order}, {runbook.source})", file=out)
        print(f"    {runbook.title}: {matchers}", file=out)
    return 0


def _show(runbooks: "RunbookSet", name: str, out: TextIO) -> int:
    runbook = runbooks.get(name)
    if runbook is None:
        known = ", ".join(r.name for r in runbooks.runbooks)
        print(f"sevflow runbooks: no runbook {name!r} (known: {known})", file=sys.stderr)
        return 1
    print(f"# {runbook.title}", file=out)
    print(f"matchers: {', '.join(map(str, runbook.matchers))}", file=out)
    print(f"source:   {runbook.source}\n", file=out)
    print(runbook.body, end="", file=out)
    return 0


def _match(settings: Settings, runbooks: "RunbookSet", args: argparse.Namespace, out: TextIO) -> int:
    from models.runbooks import classification_values
    from sevflow.explain import parse_pairs
    from streams.rules import load_rules

    labels = parse_pairs(args.labels, "a label")
    annotations = parse_pairs(args.annotation, "an annotation")
    cls = load_rules(settings.rules_file).classify(labels, annotations)
    flags = ", ".join(f"{k}={v}" for k, v in classification_values(cls).items())
    rendered = runbooks.for_alert(labels, annotations, cls)
    if rendered is None:
        print(f"no runbook matches ({flags})", file=out)
        return 1
    print(f"# {rendered.title}  (runbook {rendered.name}; {flags})", file=out)
    if rendered.url:
        print(f"runbook_url: {rendered.url}", file=out)
    if rendered.placeholders:
        print(f"not filled (no such label): {', '.join(rendered.placeholders)}", file=out)
    print(file=out)
    print(rendered.text, end="", file=out)
    return 0


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run ``sevflow runbooks …``: 0 when done, 1 when nothing is found, 2 on a bad file or
    argument."""
    from models.classification import RulesError
    from models.runbooks import RunbookError
    from streams.runbooks import load_runbooks

    out = out if out is not None else sys.stdout
    try:
        runbooks = load_runbooks(settings.runbooks_dir)
        if args.runbooks_command == "list":
            return _list(runbooks, out)
        if args.runbooks_command == "show":
            return _show(runbooks, args.name, out)
        return _match(settings, runbooks, args, out)
    except (RunbookError, RulesError, ValueError) as exc:
        print(f"sevflow runbooks: {exc}", file=err if err is not None else sys.stderr)
        return 2
