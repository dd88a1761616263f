"""``sevflow run|receiver|worker|sinks``: the long-running roles (sevflow/roles/), all three
under one supervisor or one alone. Their heavy imports (faust, aiokafka, uvicorn) happen only
once the arguments are valid and one of these commands was chosen."""

import argparse
from typing import Any, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("run", "receiver", "worker", "sinks")


def add_parsers(sub: Any) -> None:
    sub.add_parser("run", help="run the receiver, the stream worker and the sinks (the main job)")
    sub.add_parser("receiver", help="run only the HTTP receiver (Alertmanager webhook -> Kafka)")
    sub.add_parser("worker", help="run only the stream worker (Kafka -> incident store)")
    sub.add_parser("sinks", help="run only the sinks (incident-events -> PagerDuty, Slack, status page)")


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run the role ``args.command`` until it stops; its exit status."""
    if args.command == "receiver":
        from sevflow.roles.receiver import run_receiver

        return run_receiver(settings)
    if args.command == "worker":
        from sevflow.roles.worker import run_worker

        return run_worker(settings)
    if args.command == "sinks":
        from sevflow.roles.sinks import run_sinks_role

        return run_sinks_role(settings)
    from sevflow.supervise import run_all

    return run_all(settings)
