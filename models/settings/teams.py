"""Teams: which team owns an incident (README "Teams")."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TeamSettings"]


class TeamSettings(BaseModel):
    """The teams file; without it every incident is the default team's (today's settings)."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    teams_file: Path | None = Field(
        default=None,
        description="Teams file (YAML): each team's matchers, PagerDuty routing key (by env or "
        "file reference), announcement channel and status-page components; first match wins, "
        "an unmatched alert is the default team's. Checked at start (file and line). Unset: one "
        "team, default, with SEVFLOW_PAGERDUTY_ROUTING_KEY, SEVFLOW_SLACK_ANNOUNCE_CHANNEL and "
        "SEVFLOW_STATUSPAGE_COMPONENTS.",
    )
