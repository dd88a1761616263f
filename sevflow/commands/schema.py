"""``sevflow schema``: the JSON Schema of the records on the ``incident-events`` topic."""

import argparse
import json
import sys
from typing import Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("schema",)


def add_parsers(sub: Any) -> None:
    sub.add_parser("schema", help="print the JSON Schema of incident-events records")


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    from models.events import IncidentEvent

    schema = json.dumps(IncidentEvent.model_json_schema(), indent=2, sort_keys=True)
    print(schema, file=out if out is not None else sys.stdout)
    return 0
