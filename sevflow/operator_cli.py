"""The operator commands moved to sevflow/commands/ (one module per command group); this name
stays for :func:`store_problem`, which the roles' modules (sevflow/runner.py,
sevflow/sinks_runner.py) import from here until they move to sevflow/roles/."""

from sevflow.commands.common import store_problem

__all__ = ["store_problem"]
