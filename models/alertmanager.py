"""The Alertmanager webhook payload (version 4), as Alertmanager and Grafana alerting send it.

Reference: Alertmanager ``notify/webhook/webhook.go`` (``Message``: ``template.Data`` plus
``version``, ``groupKey``, ``truncatedAlerts``) and ``template/template.go``. Unknown fields are
ignored (Grafana adds ``orgId``, ``title``, ``state``, ``message``, per-alert ``values``,
``silenceURL``... and Alertmanager ≥ 0.32 adds ``notification_reason``, ≥ 0.34 ``routeLabels``).

Grafana alerting sends the same shape with ``"version": "1"`` and an ``orgId``; that pair is
accepted as Grafana's. Any other version is refused: a payload we cannot interpret is never guessed
at (Alertmanager's ``payload:`` templates can send anything).

What other senders omit but can be derived faithfully is derived by :func:`to_records`: a missing
``fingerprint`` from the label set (exactly as Alertmanager computes it), a missing per-alert
``status`` from ``endsAt``, a missing ``groupKey`` from ``groupLabels`` (or the alert's labels).

Rules Alertmanager itself enforces on alerts (``model.Alert.Validate`` in prometheus/common) are
enforced here too, so that nothing reaches Kafka that a real Alertmanager could not have sent: at
least one label; label names non-empty (Prometheus 3 / Alertmanager ≥ 0.28 accept any UTF-8 name, so
the legacy ``[a-zA-Z_][a-zA-Z0-9_]*`` rule is not imposed: it would refuse, for ever, alerts a
modern Alertmanager legitimately sends); every string valid UTF-8 (JSON can smuggle lone surrogates,
which could never be written to Kafka). Every value fits the incident store on both back ends:
``fingerprint`` and ``receiver`` within their columns (:data:`models.alert.FINGERPRINT_MAX`,
:data:`models.alert.RECEIVER_MAX`) and no string holding U+0000, which PostgreSQL text cannot store
(a value the store refuses would otherwise stop the worker, not the sender). Sizes are capped
(:data:`MAX_ALERTS`, :data:`MAX_LABELS`) so a hostile body within the byte cap cannot make the
receiver do absurd amounts of work.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.alert import (
    ALERT_SCHEMA_VERSION,
    FINGERPRINT_MAX,
    RECEIVER_MAX,
    AlertRecord,
    AlertStatus,
    NulFree,
    in_time_range,
    no_nul,
)
from models.fingerprint import fingerprint
from models.trusted import trusted
from models.wire import lone_surrogate_at

__all__ = [
    "MAX_ALERTS",
    "MAX_LABELS",
    "ZERO_TIME",
    "WebhookAlert",
    "WebhookPayload",
    "format_group_key",
    "to_records",
]

#: Go's zero ``time.Time``: Alertmanager's ``endsAt`` for an alert with no known end.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)

#: More alerts than this in one notification is not something Alertmanager sends in practice
#: (``max_alerts`` exists to keep notifications small); refuse rather than fan out without bound.
MAX_ALERTS = 10_000

#: Labels or annotations per alert (Prometheus' own default ``label_limit`` is unlimited, but real
#: rules carry tens); a bound keeps fingerprinting and validation linear in a sane size.
MAX_LABELS = 1_000

#: ``truncatedAlerts`` is a Go ``uint64``.
_MAX_UINT64 = 2**64 - 1


def _label_set(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} entries are accepted")
    if "" in value:
        raise ValueError("label names must not be empty")
    for name, item in value.items():
        no_nul(name)
        no_nul(item)
    return value


LabelSet = Annotated[dict[str, str], AfterValidator(_label_set)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)


class WebhookAlert(_Wire):
    """One alert of a webhook payload."""

    status: AlertStatus | None = None
    labels: LabelSet
    annotations: LabelSet = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: NulFree | None = Field(default=None, alias="generatorURL")
    fingerprint: NulFree | None = Field(default=None, max_length=FINGERPRINT_MAX)

    @field_validator("labels")
    @classmethod
    def _not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        # prometheus/common model.Alert.Validate: "at least one label pair required".
        if not value:
            raise ValueError("at least one label pair is required")
        return value

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        # Alertmanager and Grafana write Go's time.Time, an RFC 3339 string, which is all Go's
        # decoder takes; pydantic alone would also read a Unix number, bare or quoted.
        if isinstance(value, datetime) or value is None:
            return value
        if not isinstance(value, str) or len(value) < 20 or value[4] != "-" or value[10] not in "Tt ":
            raise ValueError("must be an RFC 3339 time string, e.g. 2024-05-01T12:00:00Z")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone (RFC 3339)")
        if value is None or (info.field_name == "ends_at" and value <= ZERO_TIME):
            return value  # (Go's zero time: no end known)
        return in_time_range(value)


class WebhookPayload(_Wire):
    """A notification for one alert group."""

    version: Literal["4", "1"] = Field(
        description='"4" (Alertmanager); "1" only with orgId (Grafana alerting).'
    )
    # (strict: Go's decoder refuses "5", true and 1e3 for an integer, as these do now)
    org_id: int | None = Field(
        default=None, alias="orgId", strict=True, description="Grafana's organisation."
    )
    group_key: NulFree | None = Field(default=None, alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0, le=_MAX_UINT64, strict=True)
    status: AlertStatus
    receiver: NulFree = Field(max_length=RECEIVER_MAX)
    group_labels: LabelSet = Field(default_factory=dict, alias="groupLabels")
    common_labels: LabelSet = Field(default_factory=dict, alias="commonLabels")
    common_annotations: LabelSet = Field(default_factory=dict, alias="commonAnnotations")
    external_url: NulFree | None = Field(default=None, alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    @model_validator(mode="after")
    def _valid_utf8(self, info: ValidationInfo) -> Self:
        # The JSON parser already refuses lone surrogates (400); Python callers can still pass them,
        # and such a string could never be encoded for Kafka. (An "after" check: a "before" one
        # would make pydantic build Python objects from every JSON body first.)
        if info.mode == "python" and (where := lone_surrogate_at(self.model_dump(by_alias=True))):
            raise ValueError(f"{where}: must be valid UTF-8 (lone surrogate)")
        return self

    @model_validator(mode="after")
    def _known_version(self) -> Self:
        if self.version == "1" and self.org_id is None:
            # Only Grafana's webhook is version "1" (and it always sends orgId); anything else
            # calling itself "1" is an older format we would misread.
            raise ValueError('version "1" is only accepted from Grafana alerting (with orgId)')
        return self


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
    """Turn a webhook payload into one alerts-topic record per alert, deriving what is missing.

    The records are built without validating them again (:func:`models.trusted.trusted`): the
    payload's validation already holds every value to what an :class:`AlertRecord` accepts (no
    NUL, a fingerprint of at most 64 characters, a receiver of at most 255, aware times from 1970
    and before 9000, an end at Go's zero time read as none), and what is derived here keeps to it.
    That was a sixth of the receiver's CPU per alert; tests/unit/test_webhook_payload.py holds the
    records to what validation builds, on hostile payloads too. ``received_at`` is checked here."""
    in_time_range(received_at)
    records = []
    for alert in payload.alerts:
        group_key = payload.group_key or format_group_key(payload.group_labels or alert.labels)
        ends_at = alert.ends_at if alert.ends_at is not None and alert.ends_at > ZERO_TIME else None
        record = {
            "schema_version": ALERT_SCHEMA_VERSION,
            "fingerprint": alert.fingerprint or fingerprint(alert.labels),
            "status": _derive_status(alert, received_at),
            "labels": alert.labels,
            "annotations": alert.annotations,
            "starts_at": alert.starts_at,
            "ends_at": ends_at,
            "generator_url": alert.generator_url or None,
            "receiver": payload.receiver,
            "group_key": group_key,
            "external_url": payload.external_url or None,
            "truncated_alerts": payload.truncated_alerts,
            "received_at": received_at,
        }
        records.append(trusted(AlertRecord, record))
    return records
