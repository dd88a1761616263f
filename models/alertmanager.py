"""The Alertmanager webhook payload (version 4), as Alertmanager and Grafana alerting send it.

Reference: Alertmanager ``notify/webhook`` and ``template.Data``. Unknown fields are ignored (Grafana
adds several). What other senders omit but can be derived faithfully is derived by :func:`to_records`:
a missing ``fingerprint`` from the label set, a missing per-alert ``status`` from ``endsAt``, a
missing ``groupKey`` from ``groupLabels`` (or the alert's labels). Anything else that is missing or of
the wrong type is a validation error naming the field.
"""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.alert import AlertRecord, AlertStatus
from models.fingerprint import fingerprint

__all__ = ["ZERO_TIME", "WebhookAlert", "WebhookPayload", "format_group_key", "to_records"]

#: Go's zero ``time.Time``: Alertmanager's ``endsAt`` for an alert with no known end.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class WebhookAlert(_Wire):
    """One alert of a webhook payload."""

    status: AlertStatus | None = None
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: str | None = None

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (RFC 3339)")
        return value


class WebhookPayload(_Wire):
    """A notification for one alert group."""

    version: Literal["4"]
    group_key: str | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: AlertStatus
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(default=None, alias="externalURL")
    alerts: list[WebhookAlert]


def format_group_key(labels: dict[str, str]) -> str:
    """Format a label set as Alertmanager prints a group key's label part: ``{a="1", b="2"}``."""
    inner = ", ".join(f"{k}={_quote(labels[k])}" for k in sorted(labels))
    return "{}:{" + inner + "}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _derive_status(alert: WebhookAlert, now: datetime) -> AlertStatus:
    """An explicit status wins; otherwise an end in the past means resolved."""
    if alert.status is not None:
        return alert.status
    if alert.ends_at is None or alert.ends_at <= ZERO_TIME or alert.ends_at > now:
        return "firing"
    return "resolved"


def to_records(payload: WebhookPayload, received_at: datetime) -> list[AlertRecord]:
    """Turn a webhook payload into one alerts-topic record per alert, deriving what is missing."""
    records = []
    for alert in payload.alerts:
        group_key = payload.group_key or format_group_key(payload.group_labels or alert.labels)
        ends_at = alert.ends_at if alert.ends_at is not None and alert.ends_at > ZERO_TIME else None
        records.append(
            AlertRecord(
                fingerprint=alert.fingerprint or fingerprint(alert.labels),
                status=_derive_status(alert, received_at),
                labels=alert.labels,
                annotations=alert.annotations,
                starts_at=alert.starts_at,
                ends_at=ends_at,
                generator_url=alert.generator_url or None,
                receiver=payload.receiver,
                group_key=group_key,
                external_url=payload.external_url or None,
                truncated_alerts=payload.truncated_alerts,
                received_at=received_at,
            )
        )
    return records
