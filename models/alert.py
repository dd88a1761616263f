"""The alert record: one alert as the receiver writes it to the alerts topic.

This is a wire format other processes read: fields are only ever added, and ``schema_version``
changes when a reader would have to behave differently.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ALERT_SCHEMA_VERSION", "AlertRecord", "AlertStatus", "RecordPosition"]

ALERT_SCHEMA_VERSION = 1

AlertStatus = Literal["firing", "resolved"]


class AlertRecord(BaseModel):
    """An alert as received, keyed on the alerts topic by its fingerprint."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = ALERT_SCHEMA_VERSION
    fingerprint: str = Field(min_length=1, description="Alertmanager's fingerprint of the labels.")
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = Field(default=None, description="None while no end is known.")
    generator_url: str | None = None
    receiver: str
    group_key: str = Field(description="Alertmanager's groupKey, or derived from groupLabels.")
    external_url: str | None = None
    truncated_alerts: int = 0
    received_at: datetime = Field(description="When sevflow's receiver accepted the payload.")

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
