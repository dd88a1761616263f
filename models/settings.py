"""sevflow's configuration: one typed object, read from ``SEVFLOW_*`` environment variables.

Built once in the command-line entry point and passed down; nothing else reads ``os.environ``.
Every field carries a description and a default; ``sevflow --help`` prints them. Secrets are
``SecretStr`` so they never appear in a ``repr``, a log line or an error body.
"""

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every setting of sevflow, with its environment variable ``SEVFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SEVFLOW_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers, comma separated host:port (the local broker of "
        "scripts/kafka.sh by default).",
    )
    alerts_topic: str = Field(
        default="sevflow-alerts",
        description="Topic the receiver writes one record per alert to, keyed by fingerprint.",
    )
    topic_partitions: int = Field(
        default=8,
        ge=1,
        description="Partitions of the topics sevflow creates; faust's tables need the same count "
        "on every topic of one pipeline, so set it before the first start.",
    )
    app_id: str = Field(
        default="sevflow",
        description="Stream application id: the Kafka consumer group and the prefix of faust's "
        "internal topics.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the incident store, e.g. postgresql://user:pw@host/db. "
        "Unset: an SQLite file in SEVFLOW_DATA_DIR.",
    )
    data_dir: Path = Field(
        default=Path(".sevflow"),
        description="Directory for the embedded SQLite database and the stream worker's state.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the receiver listens on.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the receiver.")
    webhook_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted on POST /webhooks/alertmanager, comma separated; "
        "several at once allow rotation. Required unless SEVFLOW_ALLOW_UNAUTHENTICATED=true.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="Accept webhooks without credentials (only for a closed test network).",
    )
    kafka_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the receiver waits for Kafka to acknowledge a payload before it "
        "answers 503 so that Alertmanager retries.",
    )
    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")

    @field_validator("webhook_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    def webhook_auth_problem(self) -> str | None:
        """Why the receiver must not start with these settings, or None when it may."""
        if not self.webhook_tokens and not self.allow_unauthenticated:
            return (
                "no webhook credentials: set SEVFLOW_WEBHOOK_TOKENS (comma separated) or, on a "
                "closed test network only, SEVFLOW_ALLOW_UNAUTHENTICATED=true"
            )
        return None

    def sqlalchemy_url(self) -> str:
        """The configured database URL, or the embedded SQLite file's."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'sevflow.db').resolve()}"
