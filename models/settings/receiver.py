"""Receiver settings: where it listens, which credentials it accepts, its limits."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

__all__ = ["ReceiverSettings"]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list | tuple):  # given as a list: a blank entry is no credential either
        return [t for t in value if _secret_text(t).strip()]
    return value


def _secret_text(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class ReceiverSettings(BaseModel):
    """The HTTP receiver (Alertmanager webhook)."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    http_host: str = Field(default="127.0.0.1", description="Address the receiver listens on.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the receiver.")
    webhook_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted on POST /webhooks/alertmanager, comma separated; "
        "several at once allow rotation. Required unless SEVFLOW_WEBHOOK_BASIC_AUTH is set or "
        "SEVFLOW_ALLOW_UNAUTHENTICATED=true.",
    )
    webhook_basic_auth: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="HTTP basic credentials accepted on the webhook, as user:password, comma "
        "separated (Alertmanager's http_config.basic_auth); several allow rotation.",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="Accept webhooks without credentials (only for a closed test network).",
    )
    kafka_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3_600,
        description="How long the receiver waits for Kafka to acknowledge a payload before it "
        "answers 503 so that Alertmanager retries. Keep it under Alertmanager's own per-flush "
        "deadline (max(group_interval, 10s)) so the 503 reaches it.",
    )
    max_concurrent_publishes: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Payloads handed to Kafka at once; more wait their turn in arrival order. "
        "In an alert storm (thousands of groups at once) this keeps each payload fast instead of "
        "making all of them slow together.",
    )
    publish_queue_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3_600,
        description="How long a payload may wait for its turn before the receiver answers 503 "
        "(overloaded; Alertmanager retries). With SEVFLOW_KAFKA_TIMEOUT_SECONDS it should stay "
        "within Alertmanager's minimum per-flush deadline of 10 s.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest webhook body accepted; a larger one is refused with 413 before it "
        "is read in full.",
    )
    rate_limit_per_second: float = Field(
        default=0.0,
        ge=0,
        le=1_000_000_000,
        description="Emergency rate limit: webhook requests per second accepted from one source "
        "address (token bucket); more are refused with 429 and Retry-After. 0 (the default) "
        "disables it: one Alertmanager is one source, and in an alert storm it sends a request "
        "per group, which Alertmanager does not retry after a 429 until the next group_interval.",
    )
    rate_limit_burst: int = Field(
        default=2000,
        ge=1,
        le=1_000_000_000,
        description="Requests one source may send at once before the rate limit applies.",
    )
    retry_dedup_seconds: float = Field(
        default=900.0,
        gt=0,
        le=7 * 86_400,
        description="How long alerts of a payload answered 503 (or abandoned by the sender) are "
        "remembered once Kafka acknowledges them late, so that Alertmanager's retry of that "
        "payload does not write them a second time.",
    )

    @field_validator("webhook_tokens", "webhook_basic_auth", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("webhook_basic_auth")
    @classmethod
    def _user_colon_password(cls, value: list[SecretStr]) -> list[SecretStr]:
        for item in value:
            user, sep, _ = item.get_secret_value().partition(":")
            if not sep or not user:
                # Never echo the value: it is a secret.
                raise ValueError("each entry must be user:password")
        return value

    def webhook_auth_problem(self) -> str | None:
        """Why the receiver must not start with these settings, or None when it may."""
        if not self.webhook_tokens and not self.webhook_basic_auth and not self.allow_unauthenticated:
            return (
                "no webhook credentials: set SEVFLOW_WEBHOOK_TOKENS or SEVFLOW_WEBHOOK_BASIC_AUTH "
                "(comma separated) or, on a closed test network only, "
                "SEVFLOW_ALLOW_UNAUTHENTICATED=true"
            )
        return None
