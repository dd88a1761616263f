"""A quarantined record: an input record the worker can never apply, kept with why.

Written by the stream worker to its quarantine topics (``sevflow-alerts-quarantine``,
``sevflow-commands-quarantine``), read by ``sevflow dlq list --quarantine`` and sent back to its
source topic, byte for byte, by ``sevflow dlq replay --quarantine`` once the cause is fixed.

Record (key: the source record's key, up to :data:`KAFKA_KEY_MAX` bytes; value: JSON of
:class:`QuarantinedRecord`)::

    {"source": {"topic": "sevflow-alerts", "partition": 3, "offset": 1207},
     "error": "DataError", "reason": "DataError [22001]: value too long for type character
     varying(64)", "quarantined_at": "…", "key": "<base64>", "value": "<base64>"}

``reason`` never holds SQL text or label values: the error class, the SQLSTATE and the first line
of the database's message (without its DETAIL, which quotes values), or which field did not decode.
"""

import base64
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KAFKA_KEY_MAX", "KEPT_BYTES_MAX", "QuarantinedRecord", "SourcePosition"]

#: The most bytes of a record's key and value a quarantined record carries (base64 makes them a
#: third larger): a quarantined record stays under Kafka's default record limit (1 MiB). A larger
#: poison record was quarantined again and again, each write refused as too large, and the worker
#: never moved past it.
KEPT_BYTES_MAX = 700_000
#: The longest source key a quarantined record is also written under (its Kafka key). A longer
#: one is in the document only: written twice (raw, and in base64) a 600,000-byte key made a
#: record of 1.4 MB, refused at every attempt, and the worker never moved past it.
KAFKA_KEY_MAX = 1024


class SourcePosition(BaseModel):
    """Where a record was read."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class QuarantinedRecord(BaseModel):
    """An input record set aside, with its original bytes (base64) and the reason."""

    model_config = ConfigDict(frozen=True)

    source: SourcePosition
    error: str = Field(description="Error class, or 'undecodable'; the metric's reason label.")
    reason: str = Field(description="A short explanation without SQL text or values.")
    quarantined_at: datetime
    key: str | None = Field(default=None, description="The record's key bytes, base64.")
    value: str | None = Field(default=None, description="The record's value bytes, base64.")
    kept: bool = Field(
        default=True,
        description="False when the record was too large to carry (over 700,000 bytes of key and "
        "value): its bytes are then only on the source topic, at ``source``, for its retention.",
    )
    quarantine_offset: int | None = Field(
        default=None, description="Position on the quarantine topic (read side)."
    )

    @classmethod
    def of(
        cls,
        source: SourcePosition,
        key: bytes | None,
        value: bytes | None,
        error: str,
        reason: str,
        now: datetime,
    ) -> "QuarantinedRecord":
        size = len(key or b"") + len(value or b"")
        if size > KEPT_BYTES_MAX:
            return cls(
                source=source,
                error=error,
                reason=f"{reason} (its {size} bytes are not kept here, too many for a quarantine "
                f"record: they are at {source} for the topic's retention)",
                quarantined_at=now,
                kept=False,
            )
        return cls(
            source=source,
            error=error,
            reason=reason,
            quarantined_at=now,
            key=None if key is None else base64.b64encode(key).decode(),
            value=None if value is None else base64.b64encode(value).decode(),
        )

    def key_bytes(self) -> bytes | None:
        return None if self.key is None else base64.b64decode(self.key)

    def kafka_key(self) -> bytes | None:
        """The key to write this record under: the source's key, unless over :data:`KAFKA_KEY_MAX`
        bytes (replays take the key from the document, byte for byte, either way)."""
        key = self.key_bytes()
        return key if key is None or len(key) <= KAFKA_KEY_MAX else None

    def value_bytes(self) -> bytes | None:
        return None if self.value is None else base64.b64decode(self.value)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude={"quarantine_offset"}).encode()
