"""What each command starts: one composition root per role in :mod:`sevflow.roles`, ``sevflow
run`` in :mod:`sevflow.supervise`. Each role's modules are imported only when that role runs
(the worker's faust patches the event loop policy on import; the receiver carries no sink)."""

from models.settings import Settings
from sevflow.roles.startup import init_db

__all__ = [
    "init_db",
    "run_all",
    "run_receiver",
    "run_sinks_role",
    "run_worker",
]


def run_receiver(settings: Settings) -> int:
    """``sevflow receiver`` (:mod:`sevflow.roles.receiver`)."""
    from sevflow.roles.receiver import run_receiver as run

    return run(settings)


def run_worker(settings: Settings) -> int:
    """``sevflow worker`` (:mod:`sevflow.roles.worker`)."""
    from sevflow.roles.worker import run_worker as run

    return run(settings)


def run_sinks_role(settings: Settings) -> int:
    """``sevflow sinks`` (:mod:`sevflow.roles.sinks`)."""
    from sevflow.roles.sinks import run_sinks_role as run

    return run(settings)


def run_all(settings: Settings) -> int:
    """``sevflow run`` (:mod:`sevflow.supervise`)."""
    from sevflow.supervise import run_all as run

    return run(settings)
