"""The notification sinks: PagerDuty, Slack, status page (Atlassian Statuspage or built in).

Each sink is enabled by its credentials: PagerDuty by ``SEVFLOW_PAGERDUTY_ROUTING_KEY``, Slack by
``SEVFLOW_SLACK_TOKEN``, Atlassian Statuspage by ``SEVFLOW_STATUSPAGE_API_KEY`` and
``SEVFLOW_STATUSPAGE_PAGE_ID``; without the latter the built-in status page serves the incidents.
Base URLs are settings so that the PagerDuty EU region, a Slack proxy or a test fake are reached the
same way.
"""

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from models.severity import Severity

__all__ = ["PAGERDUTY_REGIONS", "SinkSettings", "parse_severities"]

#: The vendor base URL settings that must be https (PagerDuty's is checked on its own: its client
#: refuses anything else, flag or not).
VENDOR_URL_SETTINGS = ("slack_base_url", "statuspage_base_url")

#: Events API v2 hosts per service region (PagerDuty KB "Service Regions").
PAGERDUTY_REGIONS = {
    "us": "https://events.pagerduty.com",
    "eu": "https://events.eu.pagerduty.com",
}


def parse_severities(value: object) -> object:
    """``"SEV1-SEV3"`` or ``"SEV1,SEV4"`` (or a list) → a list of severities."""
    if not isinstance(value, str):
        return value
    chosen: list[Severity] = []
    for part in (p.strip().upper() for p in value.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        first, last = Severity(low).rank, Severity(high or low).rank
        if first > last:
            raise ValueError(f"severity range {part!r} runs backwards")
        chosen.extend(Severity(f"SEV{rank}") for rank in range(first, last + 1))
    return sorted(set(chosen), key=lambda s: s.rank)


Severities = Annotated[list[Severity], NoDecode]


class SinkSettings(BaseModel):
    """The notification sinks: PagerDuty, Slack, status page."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    # --- Kafka and the shared delivery machinery -------------------------------------------
    # The sinks consume SEVFLOW_EVENTS_TOPIC, declared with the stream worker that publishes it.
    sinks_dlq_topic: str = Field(
        default="incident-events-dlq",
        description="Dead-letter topic: events a sink could not deliver, with the sink and reason.",
    )
    sinks_group_prefix: str = Field(
        default="sevflow-sink",
        description="Consumer group prefix; each sink consumes as <prefix>-<sink> so a slow sink "
        "never delays another.",
    )
    sinks_concurrency: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Incidents a sink delivers at once (events of one incident stay in order). "
        "More overlap the vendors' round trips and share delivery-log commits.",
    )
    sinks_request_timeout_seconds: float = Field(
        default=10.0, gt=0, le=3_600, description="Timeout of every outbound HTTP call of a sink."
    )
    sinks_retry_initial_seconds: float = Field(
        default=1.0, gt=0, le=3_600, description="First retry delay (then doubled, with full jitter)."
    )
    sinks_retry_max_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Longest delay between two attempts (Retry-After wins).",
    )
    sinks_retry_deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86_400,  # (twice this, in ms, is the sinks consumers' rebalance timeout: an int32)
        description="Give up on a retryable failure after this long and dead-letter the event.",
    )
    sinks_breaker_failures: int = Field(
        default=5,
        ge=1,
        le=1_000_000,
        description="Incidents failing in a row (no success between) that open a sink's circuit "
        "breaker; one incident failing again and again counts once, and never holds the others.",
    )
    sinks_breaker_cooldown_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="How long an open breaker rejects calls before one trial call.",
    )
    sinks_dlq_max_consecutive: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Consecutive dead-lettered events after which a sink stops (a broken deploy "
        "must not route everything to the dead-letter topic) until the sinks restart; the other "
        "sinks go on, and sevflow_sink_stopped says so.",
    )
    sinks_storm_threshold: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Incidents opened within one minute above which SEV3/SEV4 notifications are "
        "summarised in one digest per sink (SEV1/SEV2 always go out one by one); PagerDuty's "
        "digest alert resolves when the last incident it summarises resolves.",
    )
    sinks_offset_reset: str = Field(
        default="earliest",
        description="Where a new sink consumer group starts: earliest (nothing missed; the "
        "delivery log prevents repeats) or latest.",
    )

    # --- PagerDuty ---------------------------------------------------------------------------
    pagerduty_routing_key: SecretStr | None = Field(
        default=None,
        description="Events API v2 integration key (32 characters). Unset: no PagerDuty sink.",
    )
    pagerduty_region: str = Field(
        default="us", description="PagerDuty service region: us or eu (sets the Events API host)."
    )
    pagerduty_base_url: str | None = Field(
        default=None,
        description="Events API base URL overriding the region (https only), e.g. a proxy.",
    )
    pagerduty_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) to verify the Events API's TLS certificate (a proxy's or a "
        "test fake's). Unset: the system's. A file that cannot be used stops the sinks at start "
        "(status 2), naming it.",
    )
    pagerduty_severities: Severities = Field(
        default_factory=lambda: [Severity.SEV1, Severity.SEV2, Severity.SEV3],
        description="Severities that page, e.g. SEV1-SEV3 or SEV1,SEV2.",
    )

    allow_insecure_vendor_urls: bool = Field(
        default=False,
        description="Accept plain http:// vendor base URLs (SEVFLOW_SLACK_BASE_URL, "
        "SEVFLOW_STATUSPAGE_BASE_URL), for tests against loopback fakes only; logs a warning at "
        "start. Unset, an http URL is refused at start: tokens and incident text would travel in "
        "clear.",
    )

    # --- Slack -------------------------------------------------------------------------------
    slack_token: SecretStr | None = Field(
        default=None, description="Slack bot token (xoxb-…). Unset: no Slack sink."
    )
    slack_base_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (or a proxy's)."
    )
    slack_announce_channel: str = Field(
        default="incidents", description="Channel (name or id) that receives announcements."
    )
    slack_lead: str = Field(
        default="@oncall-engineer",
        description="Lead named in announcements until someone acknowledges; a user group "
        "mention such as <!subteam^S0123> pings it.",
    )
    slack_severities: Severities = Field(
        default_factory=lambda: list(Severity),
        description="Severities announced in Slack, e.g. SEV1-SEV4.",
    )
    slack_channel_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3_600,
        description="Least time between two posts to one channel (Slack allows about one message "
        "per second per channel); updates waiting meanwhile are coalesced.",
    )

    # --- Status page -------------------------------------------------------------------------
    statuspage_api_key: SecretStr | None = Field(
        default=None,
        description="Atlassian Statuspage API key. Unset: the built-in status page is used.",
    )
    statuspage_page_id: str | None = Field(default=None, description="Atlassian Statuspage page id.")
    statuspage_base_url: str = Field(
        default="https://api.statuspage.io/v1", description="Statuspage API base URL."
    )
    statuspage_components: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="The components a public status page shows: service label value → "
        "Statuspage component id (e.g. api=8kbf7d35c070,web=…), or, on the built-in page, the "
        "component's public name (e.g. checkout=Checkout); a service not listed is never shown "
        "or named on either page (README: what becomes public).",
    )
    statuspage_severities: Severities = Field(
        default_factory=lambda: [Severity.SEV1, Severity.SEV2],
        description="Severities published on the status page, e.g. SEV1-SEV2.",
    )
    statuspage_followup_minutes: int = Field(
        default=30,
        ge=0,
        le=43_200,
        description="An open incident on the status page (either backend) with no update for "
        'this long gets one that keeps its status ("We are continuing to investigate this issue. '
        'We will provide an update within 30 minutes."), as the opening update promises; the '
        "texts promise an update within these minutes; checked every minute; 0 turns follow-ups "
        "off, and the texts then promise no update.",
    )
    sinks_metrics_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="Port of the sinks' Prometheus /metrics (circuit breakers, failures, dead "
        "letters still undelivered), on SEVFLOW_STATUS_PAGE_HOST; 0 turns it off.",
    )
    status_page_host: str = Field(
        default="127.0.0.1", description="Address of the built-in status page server."
    )
    status_page_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the built-in status page server."
    )
    status_page_title: str = Field(
        default="Service status", description="Heading of the built-in status page."
    )

    @field_validator("pagerduty_severities", "slack_severities", "statuspage_severities", mode="before")
    @classmethod
    def _severities(cls, value: object) -> object:
        return parse_severities(value)

    @field_validator("pagerduty_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.lower() not in PAGERDUTY_REGIONS:
            raise ValueError(f"unknown PagerDuty region {value!r}: use us or eu")
        return value.lower()

    @field_validator("pagerduty_base_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("the PagerDuty client only accepts https:// base URLs")
        return value

    @field_validator("sinks_offset_reset")
    @classmethod
    def _reset(cls, value: str) -> str:
        if value not in {"earliest", "latest"}:
            raise ValueError("use earliest or latest")
        return value

    @field_validator("statuspage_components", mode="before")
    @classmethod
    def _components(cls, value: object) -> object:
        if isinstance(value, str):
            components: dict[str, str] = {}
            for item in (p for p in value.split(",") if p.strip()):
                service, sep, component = item.partition("=")
                if not sep or not service.strip() or not component.strip():
                    raise ValueError(f"each entry must be service=component-id, not {item.strip()!r}")
                components[service.strip()] = component.strip()
            return components
        return value

    def insecure_vendor_urls(self) -> list[str]:
        """The ``SEVFLOW_*`` names of the vendor base URLs that are not https."""
        return [
            f"SEVFLOW_{name.upper()}"
            for name in VENDOR_URL_SETTINGS
            if not str(getattr(self, name)).lower().startswith("https://")
        ]

    def pagerduty_url(self) -> str:
        """The Events API base URL: the override, else the region's host."""
        return self.pagerduty_base_url or PAGERDUTY_REGIONS[self.pagerduty_region]

    def statuspage_configured(self) -> bool:
        """True when Atlassian Statuspage is configured (else the built-in page is used)."""
        return self.statuspage_api_key is not None and self.statuspage_page_id is not None
