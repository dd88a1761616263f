"""sevflow's configuration: one typed object, read from ``SEVFLOW_*`` environment variables.

Built once in the command-line entry point and passed down; nothing else reads ``os.environ``.
Every field carries a description and a default; ``sevflow --help`` prints them. Secrets are
``SecretStr`` so they never appear in a ``repr``, a log line or an error body.

Each part of sevflow declares its settings in its own module here (a mixin); :class:`Settings`
combines them, so every variable still lives under the one ``SEVFLOW_`` prefix.
"""

from pydantic_settings import BaseSettings, SettingsConfigDict

from models.settings.core import CoreSettings
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
    EscalationSettings,
    RunSettings,
):
    """Every setting of sevflow, with its environment variable ``SEVFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEVFLOW_", extra="ignore", frozen=True)
