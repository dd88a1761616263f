"""``sevflow init-db``: create or migrate the incident store's tables (store/migrations) and exit."""

import argparse
from typing import Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("init-db",)


def add_parsers(sub: Any) -> None:
    sub.add_parser("init-db", help="create or migrate the incident store's tables and exit")


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    from sevflow.roles.startup import init_db

    return init_db(settings)
