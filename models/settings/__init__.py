"""sevflow's configuration: one typed object, read from ``SEVFLOW_*`` environment variables.

Built once in the command-line entry point and passed down; nothing else reads ``os.environ``.
Every field carries a description and a default; ``sevflow --help`` prints them. Secrets are
``SecretStr`` so they never appear in a ``repr``, a log line or an error body.

Each part of sevflow declares its settings in its own module here (a mixin); :class:`Settings`
combines them, so every variable still lives under the one ``SEVFLOW_`` prefix.
"""

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.settings.canary import CanarySettings
from models.settings.core import CoreSettings
from models.settings.email import EmailSettings
from models.settings.escalation import EscalationSettings
from models.settings.receiver import ReceiverSettings
from models.settings.run import RunSettings
from models.settings.sinks import SinkSettings
from models.settings.streams import StreamSettings

__all__ = ["Settings"]


class Settings(
    BaseSettings,
    CoreSettings,
    ReceiverSettings,
    StreamSettings,
    SinkSettings,
    EmailSettings,
    EscalationSettings,
    RunSettings,
    CanarySettings,
):
    """Every setting of sevflow, with its environment variable ``SEVFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEVFLOW_", extra="ignore", frozen=True)

    @model_validator(mode="after")
    def _canary_has_a_pagerduty_sink(self) -> "Settings":
        if self.canary_pagerduty_routing_key is not None and self.pagerduty_routing_key is None:
            # The canary ends in the PagerDuty sink, which runs only with the normal key.
            raise ValueError(
                "SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY needs SEVFLOW_PAGERDUTY_ROUTING_KEY: the "
                "canary is delivered by the PagerDuty sink"
            )
        return self
