"""sevflow's configuration: one typed object, read from ``SEVFLOW_*`` environment variables.

Built once in the command-line entry point and passed down; nothing else reads ``os.environ``.
Every field carries a description and a default; ``sevflow --help`` prints them. Secrets are
``SecretStr`` so they never appear in a ``repr``, a log line or an error body.

Each part of sevflow declares its settings in its own module here (a mixin); :class:`Settings`
combines them, so every variable still lives under the one ``SEVFLOW_`` prefix.
"""

from dataclasses import replace
from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.record_limits import largest_batches
from models.settings.access import AccessSettings
from models.settings.canary import CanarySettings
from models.settings.console import ConsoleSettings
from models.settings.core import CoreSettings
from models.settings.email import EmailSettings
from models.settings.escalation import EscalationSettings
from models.settings.listeners import ListenerSettings
from models.settings.receiver import ReceiverSettings
from models.settings.run import RunSettings
from models.settings.sinks import SinkSettings
from models.settings.streams import StreamSettings
from models.settings.teams import TeamSettings
from models.settings.verification import VerificationSettings
from models.topics import OVERRIDES_SETTING, TopicSpec, parse_topic_overrides

__all__ = ["Settings"]

#: The settings naming a file or directory sevflow reads when set.
_OPTIONAL_PATHS = (
    "api_tokens_file",
    "escalation_policy_file",
    "pagerduty_ca_file",
    "rules_file",
    "runbooks_dir",
    "smtp_ca_file",
    "teams_file",
    "verify_file",
)


class Settings(
    BaseSettings,
    CoreSettings,
    ReceiverSettings,
    ListenerSettings,
    StreamSettings,
    SinkSettings,
    EmailSettings,
    EscalationSettings,
    RunSettings,
    CanarySettings,
    AccessSettings,
    ConsoleSettings,
    VerificationSettings,
    TeamSettings,
):
    """Every setting of sevflow, with its environment variable ``SEVFLOW_<NAME>``."""

    # No setting is infinite: inf or nan in a timeout, a backoff or a window's length hung a
    # role (a wait for ever) or made every comparison false.
    model_config = SettingsConfigDict(
        env_prefix="SEVFLOW_", extra="ignore", frozen=True, allow_inf_nan=False
    )

    def topic_spec(self, name: str) -> TopicSpec:
        """How sevflow creates and checks the topic ``name`` (:meth:`CoreSettings.topic_spec`),
        with the largest record batch it writes there (models/record_limits.py)."""
        spec = super().topic_spec(name)
        quarantines = (
            self.alerts_quarantine_topic,
            self.commands_quarantine_topic,
            self.probe_results_quarantine_topic,
        )
        largest = largest_batches(
            self.alerts_topic, self.events_topic, self.sinks_dlq_topic, quarantines
        )
        return replace(spec, record_bytes=largest[name]) if name in largest else spec

    def created_topics(self) -> tuple[str, ...]:
        """The topics the roles create and check at start (models.topics): faust declares the
        quarantine topics itself."""
        return (
            self.alerts_topic,
            self.commands_topic,
            self.events_topic,
            self.sinks_dlq_topic,
            self.probe_results_topic,
        )

    @field_validator(*_OPTIONAL_PATHS, mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        """An empty ``SEVFLOW_*_FILE`` (a template's blank line) names no file: it is unset, not
        the working directory (``Path("")`` is ``.``: "escalation policy .: Is a directory")."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_is_named(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            # (it made ./sevflow.db in whatever directory the command ran in)
            raise ValueError("names no directory (unset it for the default, .sevflow)")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_directory(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} exists and is not a directory")
        return value

    @model_validator(mode="after")
    def _topic_overrides_name_sevflows_topics(self) -> "Settings":
        known = self.created_topics()
        for topic in parse_topic_overrides(self.topic_overrides):
            if topic not in known:
                # A misspelt topic would otherwise keep the global values without a word.
                raise ValueError(
                    f"{OVERRIDES_SETTING} names {topic}, not one of sevflow's topics "
                    f"({', '.join(known)})"
                )
        return self

    @model_validator(mode="after")
    def _canary_has_a_pagerduty_sink(self) -> "Settings":
        if self.canary_pagerduty_routing_key is not None and self.pagerduty_routing_key is None:
            # The canary ends in the PagerDuty sink, which runs only with the normal key.
            raise ValueError(
                "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY needs SEVFLOW_PAGERDUTY_ROUTING_KEY: the "
                "canary is delivered by the PagerDuty sink"
            )
        return self

    @model_validator(mode="after")
    def _callers_are_scoped(self) -> "Settings":
        if problem := self.callback_problem():
            raise ValueError(problem)
        if self.slack_signing_secret is not None and self.slack_token is None:
            raise ValueError(
                "SEVFLOW_SLACK_SIGNING_SECRET needs SEVFLOW_SLACK_TOKEN: who presses a button is "
                "looked up in Slack (users.info) to refuse guests"
            )
        return self

    @model_validator(mode="after")
    def _vendor_urls_are_https(self) -> "Settings":
        insecure = self.insecure_vendor_urls()
        if insecure and not self.allow_insecure_vendor_urls:
            raise ValueError(
                f"{', '.join(insecure)} must be https:// (tokens and incident text would travel "
                "in clear); SEVFLOW_ALLOW_INSECURE_VENDOR_URLS=1 accepts http for tests only"
            )
        return self
