"""``sevflow ack <id>``, ``sevflow resolve <id>``, ``sevflow escalate <id> --to manager`` and
``sevflow escalations [<id>]``.

``escalate --to manager`` is the playbook's manual escalation to the engineering manager (SEV1):
like ``ack``, a command checked against the store (an unknown or resolved incident is exit 1) and
published; the worker notifies the policy's ``manager_targets`` once per episode.

``ack`` and ``resolve`` look the incident up in the store first: no such incident, or
acknowledging a resolved one, is an error (exit 1), and an incident already in that state is
reported and left alone (exit 0). Otherwise they publish a command to the commands topic, exactly
as the HTTP API and the Slack / PagerDuty callbacks do (``Actor(via="cli", name=<the login
name>, note=<--by>)``: ``--by`` is a note shown beside the actor, never the actor); the worker
applies it and the escalation stops.

``escalations`` reads the store and prints, for every escalation that may still fire, what fires
next and when (and the response-target deadline); with an incident id it also prints what
already fired.

SQLAlchemy, Kafka and the store are imported by the functions that use them.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from models.clock import Clock, utc_now
from models.escalation import EscalationState, format_duration
from models.incident import RESOLUTION_DETAIL_MAX, Command
from models.settings import Settings
from sevflow.commands.common import StoreUnreadable, incident_id, login, read_incident
from sevflow.commands.queue import cli_command, publish, queue
from sevflow.problems import store_problem

if TYPE_CHECKING:
    from receiver.callbacks import CommandSink
    from receiver.commands import Action
    from store.escalations import FiredStep, PendingEscalation

__all__ = [
    "NAMES",
    "ack",
    "add_parsers",
    "escalate",
    "escalations",
    "format_history",
    "format_pending",
    "resolve",
    "run",
    "send_command",
]

NAMES = ("ack", "resolve", "escalate", "escalations")
_NAMES: "dict[Action, str]" = {"acknowledge": "ack", "resolve": "resolve", "escalate": "escalate"}


def _detail(value: str) -> str:
    if len(value) > RESOLUTION_DETAIL_MAX:
        raise argparse.ArgumentTypeError(f"at most {RESOLUTION_DETAIL_MAX} characters")
    return value


async def send_command(
    publisher: "CommandSink",
    incident_id: str,
    action: "Action",
    *,
    by: str | None,
    now: datetime,
    details: dict[str, str] | None = None,
    episode: int | None = None,
    note: str | None = None,
) -> Command:
    """Publish one acknowledge / resolve / escalate (to the manager) command from the command
    line; returns it.

    ``episode``: the incident's ``flaps`` as read before sending (None: not read); the worker
    refuses the command once the incident has reopened since."""
    command = cli_command(
        incident_id, action, by=by, note=note, now=now, episode=episode, **(details or {})
    )
    return await publish(publisher, command)


def _command(
    settings: Settings,
    incident_id: str,
    action: "Action",
    by: str | None,
    out: TextIO,
    details: dict[str, str] | None = None,
    err: TextIO | None = None,
) -> int:
    """Check the incident in the store, then publish; exit status 0 once Kafka has the command
    or the incident is already in that state, 1 when there is no such incident, it is resolved
    (acknowledge) or Kafka did not take the command. A store that cannot be read does not stop
    the command (acknowledging must work while the database is in trouble): it is queued
    unchecked, and stderr says so."""
    err = err if err is not None else sys.stderr
    name = _NAMES[action]
    checked = _check(settings, incident_id, action, out, err)
    if isinstance(checked, int):
        return checked
    episode = checked.episode

    command = cli_command(
        incident_id, action, by=login(), note=by, now=utc_now(), episode=episode, **(details or {})
    )
    if not queue(settings, command, name=name, what="command", err=err):
        return 1
    print(f"{action} of {incident_id} queued (command {command.command_id})", file=out)
    return 0


class _Checked:
    """The incident may be acted on: ``episode`` is its ``flaps`` as read (None: not read)."""

    def __init__(self, episode: int | None) -> None:
        self.episode = episode


def _check(
    settings: Settings, incident_id: str, action: "Action", out: TextIO, err: TextIO
) -> _Checked | int:
    """The incident as the store has it: the exit status when the command must not be sent (no
    such incident, refused, already done), else :class:`_Checked`. An unreadable store lets the
    command through unchecked, said on ``err``."""
    from receiver.commands import precheck

    name = _NAMES[action]
    try:
        incident = read_incident(settings, incident_id)
    except StoreUnreadable as exc:
        print(
            f"sevflow {name}: cannot check {incident_id} in the incident store ({exc}); "
            "queuing the command unchecked",
            file=err,
        )
        return _Checked(None)
    check = precheck(incident_id, incident, action)
    if check.verdict in ("unknown", "refused"):
        print(f"sevflow {name}: {check.message}", file=err)
        return 1
    if check.verdict == "unchanged":
        print(check.message, file=out)
        return 0
    return _Checked(incident.flaps if incident is not None else None)


def ack(
    settings: Settings,
    incident_id: str,
    *,
    by: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO | None = None,
) -> int:
    """``sevflow ack <id>``: acknowledge (stops escalation); exit status 0 once Kafka has it."""
    return _command(settings, incident_id, "acknowledge", by, out, err=err)


def resolve(
    settings: Settings,
    incident_id: str,
    *,
    by: str | None = None,
    out: TextIO = sys.stdout,
    details: dict[str, str] | None = None,
    err: TextIO | None = None,
) -> int:
    """``sevflow resolve <id> [--root-cause …] [--fix …] [--follow-up …]``: resolve by hand; the
    details go into the playbook's closing message."""
    return _command(settings, incident_id, "resolve", by, out, details, err)


def escalate(
    settings: Settings,
    incident_id: str,
    *,
    by: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO | None = None,
) -> int:
    """``sevflow escalate <id> --to manager``: escalate to the engineering manager by hand (the
    playbook's SEV1 manual escalation); exit status 0 once Kafka has it."""
    return _command(settings, incident_id, "escalate", by, out, err=err)


def _when(moment: datetime, now: datetime) -> str:
    delta = moment - now
    relative = f"in {format_duration(delta)}" if delta.total_seconds() > 0 else "now (overdue)"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z ({relative})"


def _next(state: EscalationState, now: datetime) -> str:
    level, at = state.next_level, state.next_level_at
    if level is None or at is None:
        return "no level left" if state.status.value != "acknowledged" else "stopped (acknowledged)"
    targets = ", ".join(t.label or str(t) for t in level.targets)
    number = state.next_step % len(state.plan.levels) + 1
    return f"level {number} {level.name} → {targets} at {_when(at, now)}"


def format_pending(pending: "Sequence[PendingEscalation]", now: datetime) -> str:
    """What fires next and when, one block per incident (pure: ``now`` is given)."""
    if not pending:
        return "no pending escalations"
    lines = []
    for item in pending:
        state = item.state
        lines.append(f"{state.incident_id}  {state.severity}  {item.incident_state.value}  {item.title}")
        lines.append(f"    next: {_next(state, now)}")
        if state.acknowledge_due_at is not None:
            lines.append(f"    acknowledge due: {_when(state.acknowledge_due_at, now)}")
        if state.resolve_due_at is not None:
            lines.append(f"    resolve due: {_when(state.resolve_due_at, now)}")
    return "\n".join(lines)


def format_history(state: EscalationState | None, fired: "Sequence[FiredStep]", now: datetime) -> str:
    """One incident's escalation: its state, and every step that fired."""
    if state is None:
        return "no escalation (not armed yet)"
    lines = [
        f"{state.incident_id}  escalation {state.escalation_id}  {state.severity}  {state.status.value}",
        f"    started: {state.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z",
        f"    next: {_next(state, now)}",
    ]
    if state.time_to_acknowledge is not None:
        lines.append(f"    time to acknowledge: {format_duration(state.time_to_acknowledge)}")
    if state.time_to_resolve is not None:
        lines.append(f"    time to resolve: {format_duration(state.time_to_resolve)}")
    for step in fired:
        targets = ", ".join(str(t.get("label") or t.get("to")) for t in step.targets)
        lines.append(
            f"    fired {step.fired_at.astimezone(UTC):%H:%M:%S}Z {step.step}: {step.reason}"
            + (f" → {targets}" if targets else "")
        )
    return "\n".join(lines)


def escalations(
    settings: Settings,
    *,
    incident_id: str | None = None,
    now: datetime | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """``sevflow escalations [<id>]``: what fires next and when (or one incident's history);
    exit status 1 when the store cannot be read, or the incident does not exist."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import UnsupportedDatabaseError, async_engine
    from store.escalations import EscalationRepo
    from store.incidents import IncidentStore

    moment = now or utc_now()

    async def main() -> str | None:
        engine = async_engine(settings.sqlalchemy_url())
        try:
            repo = EscalationRepo(engine)
            if incident_id is None:
                return format_pending(await repo.pending(), moment)
            state = await repo.get(incident_id)
            if state is None and await IncidentStore(engine).get(incident_id) is None:
                return None  # no such incident: as incidents show, ack and postmortem say it
            return format_history(state, await repo.history(incident_id), moment)
        finally:
            await engine.dispose()

    try:
        text = asyncio.run(main())
    except UnsupportedDatabaseError as exc:
        print(f"sevflow escalations: {exc}", file=err)
        return 1
    except SQLAlchemyError as exc:
        print(f"sevflow escalations: cannot read the incident store: {store_problem(exc)}", file=err)
        return 1
    if text is None:
        print(f"sevflow escalations: no incident {incident_id}", file=err)
        return 1
    print(text, file=out)
    return 0


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``ack``, ``resolve``, ``escalate`` and ``escalations`` on the ``sevflow`` parser."""
    for name, verb in (("ack", "acknowledge"), ("resolve", "resolve")):
        parser = sub.add_parser(name, help=f"{verb} an incident (stops its escalation)")
        parser.add_argument("incident_id", type=incident_id, help="the incident id (inc_…)")
        parser.add_argument(
            "--by",
            default=None,
            help="a note on who or why, shown beside your login name (which is the actor)",
        )
        if name == "resolve":
            for flag, what in (
                ("--root-cause", "what caused it"),
                ("--fix", "what fixed it"),
                ("--follow-up", "follow-up work, e.g. a ticket (JIRA-123)"),
            ):
                parser.add_argument(
                    flag,
                    type=_detail,
                    default=None,
                    help=f"{what}: shown in the resolution message (at most "
                    f"{RESOLUTION_DETAIL_MAX} characters)",
                )
    parser = sub.add_parser("escalate", help="escalate an incident to the manager by hand")
    parser.add_argument("incident_id", type=incident_id, help="the incident id (inc_…)")
    parser.add_argument(
        "--to",
        required=True,
        choices=["manager"],
        help="whom: the engineering manager (the escalation policy's manager_targets)",
    )
    parser.add_argument("--by", default=None, help="who (default: your login name)")
    parser = sub.add_parser("escalations", help="show what escalates next and when")
    parser.add_argument(
        "incident_id", type=incident_id, nargs="?", default=None, help="one incident's history"
    )


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
) -> int:
    """Run the sub-command ``args.command`` (one of :data:`NAMES`)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if args.command == "ack":
        return ack(settings, args.incident_id, by=args.by, out=out, err=err)
    if args.command == "resolve":
        given = {
            "root_cause": args.root_cause,
            "fix": args.fix,
            "follow_up": args.follow_up,
        }
        details = {k: v for k, v in given.items() if v}
        return resolve(settings, args.incident_id, by=args.by, details=details, out=out, err=err)
    if args.command == "escalate":
        return escalate(settings, args.incident_id, by=args.by, out=out, err=err)
    return escalations(settings, incident_id=args.incident_id, now=now(), out=out, err=err)
