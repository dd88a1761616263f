"""The ``sevflow`` commands, one module per command group; sevflow/cli.py parses and dispatches.

Each module has the same three names:

- ``NAMES``: the top-level commands it adds (``("ack", "resolve", "escalate", "escalations")``);
- ``add_parsers(sub)``: adds them (and their sub-commands and options) to sevflow's parser;
- ``run(settings, args, *, out=None, err=None, now=utc_now) -> int``: runs the chosen one and
  returns its exit status (0 done, 1 failed, 2 an invalid option: sevflow/commands/common.py).

A command module imports little at its top (argparse, ``models``): what a command needs to run
(SQLAlchemy and the store, Kafka clients, the roles with faust and uvicorn) is imported inside the
function that runs it, so building the parser and running ``sevflow incidents list`` loads neither
faust, aiokafka nor uvicorn.
"""

import argparse
from typing import Any, Protocol, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from sevflow.commands import (
    audit,
    dlq,
    escalate,
    explain,
    incidents,
    init_db,
    maintenance,
    note,
    postmortem,
    purge,
    report,
    run,
    runbooks,
    schema,
    status,
    statuspage,
    teams,
)

__all__ = ["GROUPS", "CommandGroup", "add_commands", "run_command"]


class CommandGroup(Protocol):
    """A command module (see the module docstring)."""

    @property
    def NAMES(self) -> tuple[str, ...]: ...  # noqa: N802 - a module constant

    def add_parsers(self, sub: Any) -> None: ...

    def run(
        self,
        settings: Settings,
        args: argparse.Namespace,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        now: Clock = utc_now,
    ) -> int: ...


#: Every command group, in the order ``sevflow --help`` lists their commands.
GROUPS: tuple[CommandGroup, ...] = (
    run,
    status,
    init_db,
    explain,
    schema,
    escalate,
    note,
    statuspage,
    runbooks,
    teams,
    incidents,
    report,
    postmortem,
    dlq,
    maintenance,
    audit,
    purge,
)


def add_commands(sub: Any, groups: tuple[CommandGroup, ...] = GROUPS) -> None:
    """Add the commands of ``groups`` to a parser's sub-command parsers, in order."""
    for group in groups:
        group.add_parsers(sub)
    _described(sub)


def _described(sub: Any) -> None:
    """Each command's ``--help`` opens with what the command does (its ``help=`` in the list of
    commands), its own commands' too: it showed the usage and the options alone."""
    for action in sub._choices_actions:
        parser = sub.choices[action.dest]
        if parser.description is None and action.help:
            parser.description = action.help[0].upper() + action.help[1:] + "."
        for nested in parser._subparsers._group_actions if parser._subparsers else ():
            if isinstance(nested, argparse._SubParsersAction):
                _described(nested)


def run_command(
    settings: Settings,
    args: argparse.Namespace,
    *,
    groups: tuple[CommandGroup, ...] = GROUPS,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int | None:
    """Run ``args.command`` with the group of ``groups`` that has it; None when none has it."""
    command = getattr(args, "command", None)
    for group in groups:
        if command in group.NAMES:
            return group.run(settings, args, out=out, err=err, now=now)
    return None
