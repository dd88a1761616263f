"""Receiver settings: where it listens and which credentials it accepts."""

from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

__all__ = ["ReceiverSettings"]


class ReceiverSettings(BaseModel):
    """The HTTP receiver (Alertmanager webhook)."""

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

    @field_validator("webhook_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    def webhook_auth_problem(self) -> str | None:
        """Why the receiver must not start with these settings, or None when it may."""
        if not self.webhook_tokens and not self.allow_unauthenticated:
            return (
                "no webhook credentials: set SEVFLOW_WEBHOOK_TOKENS (comma separated) or, on a "
                "closed test network only, SEVFLOW_ALLOW_UNAUTHENTICATED=true"
            )
        return None
