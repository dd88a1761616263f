"""``sevflow teams list|show NAME|match LABEL=VALUE…``: the teams the worker and the sinks use.

The teams file is read as the roles read it (``SEVFLOW_TEAMS_FILE`` on the default team of
today's settings), so a file that does not parse is named here with its line before a role
refuses to start on it. ``match`` tells which team an incident opened by such an alert would
belong to and why, like ``sevflow explain`` does for the severity. A routing key is never
printed: ``show`` names its reference and whether it is set.
"""

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from models.clock import Clock, utc_now
from models.settings import Settings
from models.teams import DEFAULT_TEAM

if TYPE_CHECKING:
    from models.teams import SecretRef, Team, Teams

__all__ = ["NAMES", "add_parsers", "run"]

NAMES = ("teams",)


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``teams list|show|match`` on the ``sevflow`` parser."""
    teams = sub.add_parser("teams", help='the teams that own incidents (README "Teams")')
    actions = teams.add_subparsers(dest="teams_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every team, in the order they are tried, with its matchers")
    show = actions.add_parser("show", help="one team: where it is paged, told and shown")
    show.add_argument("name", help=f"the team's name ({DEFAULT_TEAM}: the implicit team)")
    match = actions.add_parser("match", help="the team an alert with these labels belongs to, and why")
    match.add_argument("labels", nargs="*", metavar="NAME=VALUE", help="the alert's labels")
    match.add_argument(
        "--annotation", "-a", action="append", default=[], metavar="NAME=VALUE", help="an annotation"
    )
    match.add_argument("--receiver", "-r", help="the Alertmanager receiver the alert was sent to")


def _list(teams: "Teams", out: TextIO) -> int:
    for team in teams.teams:
        print(f"{team.name}  {', '.join(team.matchers)}", file=out)
    print(f"{DEFAULT_TEAM}  (every alert no team above matches)", file=out)
    return 0


def _routing_key(teams: "Teams", team: "Team", environ: Mapping[str, str]) -> str:
    ref = team.routing_key
    if ref is None:
        if team.name == DEFAULT_TEAM:
            setting = teams.routing_keys.get(DEFAULT_TEAM) is not None
            return f"SEVFLOW_PAGERDUTY_ROUTING_KEY ({'set' if setting else 'not set: no PagerDuty'})"
        return f"the {DEFAULT_TEAM} team's (SEVFLOW_PAGERDUTY_ROUTING_KEY)"
    return _reference(ref, environ)


def _reference(ref: "SecretRef", environ: Mapping[str, str]) -> str:
    """Where a secret is read and whether it is there; never the secret."""
    if ref.env is not None:
        return f"from env {ref.env} ({'set' if environ.get(ref.env, '').strip() else 'NOT SET'})"
    assert ref.file is not None
    return f"from file {ref.file} ({'present' if ref.file.is_file() else 'MISSING'})"


def _show(teams: "Teams", name: str, out: TextIO, environ: Mapping[str, str]) -> int:
    team = next((t for t in teams.all() if t.name == name), None)
    if team is None:
        known = ", ".join(t.name for t in teams.all())
        print(f"sevflow teams: no team {name!r} (known: {known})", file=sys.stderr)
        return 1
    components = teams.components(team.name)
    print(f"team:              {team.name}", file=out)
    if team.name == DEFAULT_TEAM:
        print("matchers:          (every alert no other team matches)", file=out)
    else:
        print(f"matchers:          {', '.join(team.matchers)}", file=out)
    print(f"routing key:       {_routing_key(teams, team, environ)}", file=out)
    print(f"announce channel:  #{teams.announce_channel(team.name).lstrip('#')}", file=out)
    shown = ", ".join(f"{service}={c}" for service, c in components.items()) or "(none shown)"
    print(f"status page:       {shown}", file=out)
    if team.private_channel_invite:
        print(f"private channels:  invite {', '.join(team.private_channel_invite)}", file=out)
    if team.escalation is not None:
        how = (
            f"policy {team.escalation.policy_file}"
            if team.escalation.policy_file is not None
            else f"{len(team.escalation.overrides)} override(s) of the default policy"
        )
        print(f"escalation:        {how}", file=out)
        for target, ref in team.escalation.routing_keys.items():
            print(f"  service of {target}: {_reference(ref, environ)}", file=out)
    if team.business_hours is not None:
        hours = team.business_hours
        days = ",".join(str(d) for d in hours.days)
        print(
            f"business hours:    days {days} {hours.start:%H:%M}-{hours.end:%H:%M} {hours.timezone}",
            file=out,
        )
    if team.runbooks_dir is not None:
        print(f"runbooks:          {team.runbooks_dir} (tried before the shared ones)", file=out)
    return 0


def _match(teams: "Teams", args: argparse.Namespace, out: TextIO) -> int:
    from sevflow.explain import parse_pairs

    labels = parse_pairs(args.labels, "a label")
    annotations = parse_pairs(args.annotation, "an annotation")
    choice = teams.explain(labels, annotations, args.receiver)
    for name, failing in choice.tried:
        print(f"  {name}: no ({failing} does not match)", file=out)
    if choice.matched is None:
        print(f"team {DEFAULT_TEAM}: no team of the teams file matches", file=out)
    else:
        print(f"team {choice.team.name}: all its matchers match", file=out)
    return 0


def run(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: Clock = utc_now,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run ``sevflow teams …``: 0 when done, 1 for an unknown team, 2 on a bad file or argument."""
    from models.teams import TeamsError
    from sevflow.teams import load_teams

    out = out if out is not None else sys.stdout
    environ = os.environ if environ is None else environ
    try:
        teams = load_teams(settings, environ, resolve=False)
        if args.teams_command == "list":
            return _list(teams, out)
        if args.teams_command == "show":
            return _show(teams, args.name, out, environ)
        return _match(teams, args, out)
    except (TeamsError, ValueError) as exc:
        print(f"sevflow teams: {exc}", file=err if err is not None else sys.stderr)
        return 2
