"""The audit log's entries: who did which dangerous thing, through what, to what, when.

Recorded: maintenance windows created and ended (with their matchers and duration), dead-letter
and quarantine replays, manual acknowledgements and resolutions, and every admin or write action
of an API token (its name is the actor). Reads are not recorded.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.incident import Command

__all__ = ["ACTIONS", "ACTION_MAX", "AuditEntry", "command_audit"]

#: The actions recorded (``sevflow audit --action``); another branch of the code may add its own.
ACTIONS = (
    "maintenance.created",
    "maintenance.ended",
    "dlq.replayed",
    "quarantine.replayed",
    "incident.acknowledged",
    "incident.resolved",
    "incident.noted",
    "statuspage.published",
)
#: The action recorded for each command the worker applies (``escalate`` records its own).
_COMMAND_ACTIONS = {
    "acknowledge": "incident.acknowledged",
    "resolve": "incident.resolved",
    "note": "incident.noted",
    # (spelt "incident.publishd" when made of the command's name: a family no --action found)
    "publish": "statuspage.published",
}
ACTION_MAX = 64
ACTOR_MAX = 128
TARGET_MAX = 255


class AuditEntry(BaseModel):
    """One recorded action. ``actor`` is who the credential says acted (a token's name, a
    verified Slack or PagerDuty user, the CLI's login name); ``via`` the channel (api, cli, slack,
    pagerduty); ``note`` the caller's free text, display only."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    at: datetime
    action: str = Field(min_length=1, max_length=ACTION_MAX)
    actor: str = Field(max_length=ACTOR_MAX)
    via: str = Field(max_length=32)
    target: str | None = Field(default=None, max_length=TARGET_MAX)
    details: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


def command_audit(command: Command) -> AuditEntry:
    """The audit log's record of a manual command that was applied: an acknowledgement, a
    resolution, a note or a status-page publication."""
    return AuditEntry(
        at=command.requested_at,
        action=_COMMAND_ACTIONS.get(command.action, f"incident.{command.action}"),
        actor=command.actor.name or command.actor.via,
        via=command.actor.via,
        target=command.incident_id,
        details={"command_id": command.command_id},
        note=command.actor.note,
    )
