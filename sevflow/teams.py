"""Loading the teams at start: the teams file of ``SEVFLOW_TEAMS_FILE`` (if any) on the default
team built from today's settings, with every routing key reference read (models/teams.py).

The one place that reads a team's routing key from the environment or a file; the roles get the
loaded :class:`~models.teams.Teams` passed in.
"""

import os
from collections.abc import Mapping

from models.settings import Settings
from models.teams import Teams, TeamsError, default_team, parse_teams, resolve_routing_keys
from models.text_files import TextFileError, read_text

__all__ = ["load_teams", "teams_problem"]


def load_teams(
    settings: Settings, environ: Mapping[str, str] | None = None, *, resolve: bool = True
) -> Teams:
    """The configured teams; raises :class:`~models.teams.TeamsError` naming the file and line.
    ``resolve=False`` leaves the teams' routing keys unread (``sevflow teams`` describes them)."""
    default, keys = default_team(
        settings.pagerduty_routing_key,
        settings.slack_announce_channel,
        settings.statuspage_components,
    )
    path = settings.teams_file
    if path is None:
        return Teams((), default, keys)
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise TeamsError(str(exc)) from None
    parsed = parse_teams(text, default, source=str(path))
    parsed = Teams(parsed.teams, default, keys, parsed.source, parsed.lines)
    if not resolve:
        return parsed
    resolved = resolve_routing_keys(parsed, os.environ if environ is None else environ)
    if settings.pagerduty_routing_key is None:
        for team in resolved.teams:
            if team.routing_key is not None or team.name in resolved.escalation_keys:
                # The PagerDuty sink runs with the default team's key: without it, this team's
                # key would page nobody, and nothing would say so.
                raise TeamsError(
                    f"{resolved.source}:{resolved.lines.get(team.name, 1)}: team {team.name!r} "
                    "has a routing key but SEVFLOW_PAGERDUTY_ROUTING_KEY (the default team's, "
                    "which turns the PagerDuty sink on) is not set"
                )
    return resolved


def teams_problem(settings: Settings) -> str | None:
    """Why the teams cannot be used (file and line), or None: checked before a role starts,
    a team's escalation policy file and runbooks included."""
    # Imported here: the store commands load sevflow.teams and must not load streams/.
    from models.runbooks import RunbookError
    from streams.escalation import PolicyError, load_policy
    from streams.runbooks import load_runbooks, team_runbooks

    try:
        teams = load_teams(settings)
        if teams.teams:
            load_policy(settings.escalation_policy_file, settings.playbook_times(), teams=teams)
            team_runbooks(teams, load_runbooks(None))
    except (TeamsError, PolicyError, RunbookError) as exc:
        return str(exc)
    return None
