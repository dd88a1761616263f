"""The alert record: one alert as the receiver writes it to the alerts topic.

This is a wire format other processes read: fields are only ever added, and ``schema_version``
changes when a reader would have to behave differently.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "ALERT_SCHEMA_VERSION",
    "EARLIEST_TIME",
    "FINGERPRINT_MAX",
    "LATEST_TIME",
    "RECEIVER_MAX",
    "AlertRecord",
    "AlertStatus",
    "NulFree",
    "NulFreeMap",
    "RecordPosition",
    "RecordTime",
    "in_time_range",
    "no_nul",
]

ALERT_SCHEMA_VERSION = 1

#: The longest fingerprint the incident store holds (``alerts.fingerprint``); Alertmanager's are 16.
FINGERPRINT_MAX = 64
#: The longest receiver name the incident store holds (``alerts.receiver``).
RECEIVER_MAX = 255


def no_nul(value: str) -> str:
    """Refuse U+0000: PostgreSQL text cannot hold it (SQLite can), so both engines take the same."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def _no_nul_map(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if "\x00" in key or "\x00" in item:
            raise ValueError(f"{key[:64]!r}: must not contain the NUL character (U+0000)")
    return value


#: A string any store back end can hold.
NulFree = Annotated[str, AfterValidator(no_nul)]
#: Labels or annotations any store back end can hold.
NulFreeMap = Annotated[dict[str, str], AfterValidator(_no_nul_map)]

#: The times a record may carry: from 1970 and before the year 9000. Beyond them the lifecycle's
#: arithmetic (a resolution's skew, a quiet period, an escalation's business days) leaves what a
#: ``datetime`` holds: a firing alert that started in the year 1, then its resolution, raised
#: ``OverflowError`` in the worker at every restart and stopped every alert behind it.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def in_time_range(value: datetime) -> datetime:
    """Refuse a time outside :data:`EARLIEST_TIME` … :data:`LATEST_TIME`."""
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise ValueError("must be from 1970-01-01 and before 9000-01-01 (UTC)")
    return value


#: A time of a record (aware, within :data:`EARLIEST_TIME` … :data:`LATEST_TIME`).
RecordTime = Annotated[AwareDatetime, AfterValidator(in_time_range)]

AlertStatus = Literal["firing", "resolved"]


class AlertRecord(BaseModel):
    """An alert as received, keyed on the alerts topic by its fingerprint.

    Every value fits the incident store on every back end (lengths, no NUL, time zones): a
    record an older receiver or a hostile producer wrote beyond that does not decode, and the
    worker quarantines it instead of failing on it in the store."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    schema_version: int = ALERT_SCHEMA_VERSION
    fingerprint: NulFree = Field(
        min_length=1,
        max_length=FINGERPRINT_MAX,
        description="Alertmanager's fingerprint of the labels.",
    )
    status: AlertStatus
    labels: NulFreeMap
    annotations: NulFreeMap = Field(default_factory=dict)
    starts_at: RecordTime
    ends_at: RecordTime | None = Field(default=None, description="None while no end is known.")
    generator_url: NulFree | None = None
    receiver: NulFree = Field(max_length=RECEIVER_MAX)
    group_key: NulFree = Field(description="Alertmanager's groupKey, or derived from groupLabels.")
    external_url: NulFree | None = None
    truncated_alerts: int = 0
    received_at: RecordTime = Field(description="When sevflow's receiver accepted the payload.")

    def to_bytes(self) -> bytes:
        """Serialise for the alerts topic (JSON, UTF-8)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "AlertRecord":
        """Parse a record read from the alerts topic; raises ``pydantic.ValidationError``."""
        return cls.model_validate_json(raw)


@dataclass(frozen=True, order=True)
class RecordPosition:
    """Where a record sits on the alerts topic: its partition and offset.

    Not part of the wire format (the worker knows it from the consumer). The records of one
    fingerprint share a partition (the topic is keyed by fingerprint), and a partition is totally
    ordered: within an alert, the offset is the one order every receiver replica agrees on, where
    ``received_at`` is stamped by the clock of whichever replica took the record."""

    partition: int
    offset: int
