"""The end-to-end canary (models.canary): how often, and which PagerDuty service it ends on."""

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["CanarySettings"]


class CanarySettings(BaseModel):
    """The synthetic canary alert the receiver sends through the whole path."""

    #: Built once, as part of :class:`models.settings.Settings`, never on its own.
    model_config = ConfigDict(defer_build=True)

    canary_interval_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="Seconds between two canary rounds: the receiver posts a synthetic alert "
        '(alertname="SevflowCanary", sevflow_canary="true") to its own webhook, firing then '
        "resolved, and the PagerDuty sink sends it to SEVFLOW_CANARY_PAGERDUTY_ROUTING_KEY at "
        "severity info. 0, or no such routing key: no canary.",
    )
    canary_pagerduty_routing_key: SecretStr | None = Field(
        default=None,
        description="Events API v2 integration key (32 characters) of a low-urgency PagerDuty "
        "service that receives only the canary; needs SEVFLOW_PAGERDUTY_ROUTING_KEY too. Unset: "
        "no canary.",
    )
    canary_resolve_after_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="How long after posting a round's firing alert the canary posts its "
        "resolution (kept below the interval).",
    )

    def canary_enabled(self) -> bool:
        """True when the canary runs: an interval and its routing key."""
        return self.canary_interval_seconds > 0 and self.canary_pagerduty_routing_key is not None
