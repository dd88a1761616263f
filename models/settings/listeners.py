"""Listeners by audience, and the limits every one of them enforces.

=================  =============================================  ==============================
listener           serves                                         address
=================  =============================================  ==============================
internal           webhook, ``/metrics``, ``/ready``, ``/health``,  ``SEVFLOW_HTTP_HOST/PORT``
                   the incident API
callbacks (public) Slack interactivity, PagerDuty webhooks only   ``SEVFLOW_CALLBACKS_HOST/PORT``
status page        the built-in status page (sinks role)          ``SEVFLOW_STATUS_PAGE_HOST/PORT``
(public)
=================  =============================================  ==============================

The limits (:class:`ListenerLimits`) are the same idea on each; the internal listener has its own
keep-alive and connection cap because Alertmanager, its one client, keeps connections alive and
opens one per alert group in a storm.
"""

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["ListenerLimits", "ListenerSettings"]


@dataclass(frozen=True)
class ListenerLimits:
    """What one HTTP listener accepts of a client before it refuses or hangs up.

    ``header_bytes``: request line and headers larger than this → 431. ``header_seconds``: from
    the connection's opening (or a request's first byte) to its last header line → else 408 and
    closed. ``body_seconds``: from the headers to the body's last byte → else 408 and closed.
    ``keep_alive_seconds``: an idle connection between requests is closed after it.
    ``max_connections``: with this many connections open, a request is answered 503.
    """

    header_bytes: int
    header_seconds: float
    body_seconds: float
    keep_alive_seconds: int
    max_connections: int


class ListenerSettings(BaseModel):
    """Where the public callbacks listener listens, the limits of every listener, the metrics
    token."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    callbacks_host: str = Field(
        default="127.0.0.1",
        description="Address of the public listener for vendor callbacks (Slack interactivity, "
        "PagerDuty webhooks); it serves nothing else. Started only when a callback secret is set.",
    )
    callbacks_port: int = Field(
        default=8082, ge=0, le=65535, description="Port of the public vendor-callbacks listener."
    )
    http_header_max_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Every listener: request line plus headers larger than this are refused with "
        "431 before they are read further.",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description="Every listener: a connection must deliver a request's headers in full within "
        "this long of opening (or of the request's first byte); else 408 and closed (slowloris, "
        "silent connections).",
    )
    http_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3_600,
        description="Every listener: a request's body must arrive in full within this long of its "
        "headers; else 408 and closed.",
    )
    http_keep_alive_seconds: int = Field(
        default=30,
        ge=1,
        le=3_600,
        description="Internal listener: an idle kept-alive connection is closed after this long "
        "(longer than uvicorn's 5 s: Alertmanager reuses its connections between group "
        "intervals).",
    )
    http_max_connections: int = Field(
        default=4096,
        ge=2,
        le=1_000_000,
        description="Internal listener: with this many connections open, further requests are "
        "answered 503 (Alertmanager retries). An alert storm opens one connection per group.",
    )
    public_keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        le=3_600,
        description="Callbacks and status page listeners: an idle kept-alive connection is closed "
        "after this long.",
    )
    public_max_connections: int = Field(
        default=1024,
        ge=2,
        le=1_000_000,
        description="Callbacks and status page listeners, each: with this many connections open, "
        "further requests are answered 503.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Every listener: addresses of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (uvicorn's forwarded_allow_ips), comma separated; the "
        "client address in logs and the webhook's rate limit then is the forwarded one. '*' "
        "believes anyone: only when nothing but the proxy can reach the listeners.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics of every role (receiver, worker, sinks) requires "
        "Authorization: Bearer <token>; /health stays open. Unset: /metrics is open (keep it on "
        "an internal network).",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _blank_metrics_token_is_unset(cls, value: object) -> object:
        # A blank token would be one anyone can send: unset, /metrics open (as documented).
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    def internal_limits(self) -> ListenerLimits:
        """The limits of the internal listener (webhook, API, /metrics)."""
        return ListenerLimits(
            header_bytes=self.http_header_max_bytes,
            header_seconds=self.http_header_timeout_seconds,
            body_seconds=self.http_body_timeout_seconds,
            keep_alive_seconds=self.http_keep_alive_seconds,
            max_connections=self.http_max_connections,
        )

    def public_limits(self) -> ListenerLimits:
        """The limits of each public listener (vendor callbacks, status page)."""
        return ListenerLimits(
            header_bytes=self.http_header_max_bytes,
            header_seconds=self.http_header_timeout_seconds,
            body_seconds=self.http_body_timeout_seconds,
            keep_alive_seconds=self.public_keep_alive_seconds,
            max_connections=self.public_max_connections,
        )
