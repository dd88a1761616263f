"""Escalation policy, timers and acknowledgement callbacks.

The policy itself (levels, targets, response targets, overrides, business hours) is a YAML file,
``SEVFLOW_ESCALATION_POLICY_FILE``; unset, the playbook's policy applies
(:func:`models.escalation.playbook_policy`). The file is read once at start-up by
``streams.escalation.load_policy``. The callback secrets verify who is calling:
``SEVFLOW_SLACK_SIGNING_SECRET`` (Slack's ``X-Slack-Signature``) and
``SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS`` (``X-PagerDuty-Signature``); a callback whose secret is unset
is not served at all.
"""

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

if TYPE_CHECKING:
    from models.escalation import PlaybookTimes

__all__ = ["EscalationSettings"]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list | tuple):  # given as a list: blank entries are no credential either
        return [t for t in value if _secret_text(t).strip()]
    return value


def _secret_text(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


#: The longest delay a setting of the default policy takes: beyond it a page never comes (and a
#: delay beyond the calendar, or ``inf``, stopped every command that builds the policy).
_A_YEAR_IN_MINUTES = 525_600


class EscalationSettings(BaseModel):
    """Escalation policy, timers and acknowledgement callbacks."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    escalation_policy_file: Path | None = Field(
        default=None,
        description="YAML escalation policy (levels and their targets, response targets, "
        "security/legal contacts, per-service and per-SEV overrides, repeats, business hours). "
        "Unset: the incident-response playbook's policy.",
    )
    escalation_secondary_after_minutes: float = Field(
        default=15,
        gt=0,
        le=_A_YEAR_IN_MINUTES,
        description="Default policy, SEV1/SEV2: the primary unacknowledged this long pages the "
        "secondary (the playbook's primary 'auto-escalates after 15 min').",
    )
    escalation_repage_after_minutes: float = Field(
        default=30,
        gt=0,
        le=_A_YEAR_IN_MINUTES,
        description="Default policy, SEV1/SEV2: counted from the secondary's page; unacknowledged "
        "by then, primary and secondary are paged again and a SEV1's channel is asked to escalate "
        "to the manager (the playbook's secondary 'auto-escalates after 30 min').",
    )
    escalation_sev3_secondary_after_minutes: float = Field(
        default=120,
        gt=0,
        le=_A_YEAR_IN_MINUTES,
        description="Default policy, SEV3: the secondary is paged when the primary has not "
        "acknowledged within this long (the SEV3 response target, < 2 hours).",
    )
    escalation_automatic_manager: bool = Field(
        default=False,
        description="Default policy, SEV1: page the engineering manager automatically with the "
        "re-page instead of asking the channel to escalate by hand (the playbook: 'Manual "
        "escalation for SEV1').",
    )
    escalation_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often the escalation loop compares stored deadlines with the clock; a "
        "level fires at most this late.",
    )
    escalation_batch_size: int = Field(
        default=200,
        ge=1,
        le=10000,
        description="Incidents the escalation loop examines per run (each in its own transaction).",
    )
    escalation_pagerduty_routing_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="Names of PagerDuty targets in the policy → Events API routing keys, e.g. "
        "secondary=<key>,engineering-manager=<key>. The primary on-call is the incident's own "
        "alert (SEVFLOW_PAGERDUTY_ROUTING_KEY): a key for it here would page it twice. Keys stay "
        "here and never travel in events.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Slack app signing secret: verifies X-Slack-Signature on "
        "POST /callbacks/slack/interactivity (Acknowledge/Resolve buttons). Unset: not served.",
    )
    slack_team_id: str | None = Field(
        default=None,
        description="The Slack workspace (team id, T…) whose members may press the buttons; "
        "required with SEVFLOW_SLACK_SIGNING_SECRET. Users of other workspaces (Slack Connect), "
        "guests and org-wide installs get an ephemeral refusal and nothing is done.",
    )
    slack_allowed_usergroup: str | None = Field(
        default=None,
        description="A Slack user group id (S…): only its members may press the buttons "
        "(usergroups.users.list, needs the usergroups:read scope). Unset: every full member of "
        "the workspace.",
    )
    slack_caller_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="How long a button presser's users.info and the user group's members are "
        "cached (Slack wants the button answered within 3 seconds); a removed member can still "
        "act for this long.",
    )
    pagerduty_account_subdomain: str | None = Field(
        default=None,
        description="The PagerDuty account (its subdomain: <subdomain>.pagerduty.com) whose "
        "webhooks are acted on; required with SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS. Events of "
        "another account (their data.html_url) are answered 202 ignored and logged.",
    )
    slack_replay_window_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Oldest (or most future) X-Slack-Request-Timestamp accepted; Slack's "
        "documented window is 5 minutes.",
    )
    pagerduty_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="PagerDuty webhook v3 subscription secrets, comma separated (several during "
        "rotation): verify X-PagerDuty-Signature on POST /callbacks/pagerduty. Unset: not served.",
    )
    callback_max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest callback body accepted (PagerDuty drops webhooks over 256 KB).",
    )

    def playbook_times(self) -> "PlaybookTimes":
        """The delays of the default policy (used when no policy file is set)."""
        from models.escalation import PlaybookTimes  # the escalation models: not every command's

        return PlaybookTimes(
            secondary_after=timedelta(minutes=self.escalation_secondary_after_minutes),
            repage_after=timedelta(minutes=self.escalation_repage_after_minutes),
            sev3_secondary_after=timedelta(minutes=self.escalation_sev3_secondary_after_minutes),
            automatic_manager=self.escalation_automatic_manager,
        )

    # Validator names must be unique across the settings mixins: Settings inherits them all, and a
    # same-named method of an earlier mixin would silently replace this one.
    @field_validator("pagerduty_webhook_secrets", mode="before")
    @classmethod
    def _split_escalation_lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("slack_signing_secret")
    @classmethod
    def _blank_signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # SEVFLOW_SLACK_SIGNING_SECRET= (an empty variable) is unset: with an empty key anyone
        # could sign a button press.
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("slack_team_id", "slack_allowed_usergroup", "pagerduty_account_subdomain")
    @classmethod
    def _blank_slack_pagerduty_ids_are_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("pagerduty_account_subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value.lower()):
            raise ValueError("the account's subdomain, as in https://<subdomain>.pagerduty.com")
        return value.lower() if value is not None else None

    def callback_problem(self) -> str | None:
        """Why the Slack or PagerDuty callbacks cannot be served as configured, or None."""
        if self.slack_signing_secret is not None and self.slack_team_id is None:
            return (
                "SEVFLOW_SLACK_SIGNING_SECRET is set but SEVFLOW_SLACK_TEAM_ID is not: without "
                "the workspace, users of any workspace sharing a channel could press the buttons"
            )
        if self.pagerduty_webhook_secrets and self.pagerduty_account_subdomain is None:
            return (
                "SEVFLOW_PAGERDUTY_WEBHOOK_SECRETS is set but SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN "
                "is not: name the PagerDuty account whose webhooks sevflow acts on"
            )
        return None

    @field_validator("escalation_pagerduty_routing_keys", mode="before")
    @classmethod
    def _routing_key_pairs(cls, value: object) -> object:
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for item in (p for p in value.split(",") if p.strip()):
                name, sep, key = item.partition("=")
                if not sep or not name.strip() or not key.strip():
                    raise ValueError("each entry must be name=routing-key")  # never echo the key
                pairs[name.strip()] = key.strip()
            return pairs
        return value
