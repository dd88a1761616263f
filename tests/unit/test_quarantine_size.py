"""A quarantined record always fits what its topic is checked to take (models/record_limits.py).

Its Kafka key used to be the source record's key, raw, beside the same key in base64 in the
document: a poison record with a 600,000-byte key made a 1.4 MB record, refused at every attempt,
and the worker never moved past it."""

from datetime import UTC, datetime

import pytest

from models.quarantine import KAFKA_KEY_MAX, KEPT_BYTES_MAX, QuarantinedRecord, SourcePosition
from models.record_limits import QUARANTINE_RECORD_BYTES, RECORD_OVERHEAD
from models.settings import Settings

NOW = datetime(2026, 12, 7, tzinfo=UTC)
WHERE = SourcePosition(topic="t" * 249, partition=2**31 - 1, offset=2**63 - 1)
#: reason_of's longest reason, every character escaped in JSON.
REASON = "\x01" * 200


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"k" * KEPT_BYTES_MAX, None),
        (None, b"v" * KEPT_BYTES_MAX),
        (b"k" * 600_000, b"{"),
        (b"k" * (KEPT_BYTES_MAX // 2), b"v" * (KEPT_BYTES_MAX // 2)),
        (b"k" * 10, b"v" * (KEPT_BYTES_MAX + 1)),  # not kept
    ],
)
def test_a_quarantined_record_fits_its_topic(key: bytes | None, value: bytes | None) -> None:
    record = QuarantinedRecord.of(WHERE, key, value, "ValidationError", REASON, NOW)
    written = len(record.kafka_key() or b"") + len(record.to_bytes())
    assert written + RECORD_OVERHEAD <= QUARANTINE_RECORD_BYTES
    assert len(record.kafka_key() or b"") <= KAFKA_KEY_MAX
    if record.kept:
        assert (record.key_bytes(), record.value_bytes()) == (key, value)  # replayed byte for byte


def test_a_short_key_is_still_the_records_key() -> None:
    record = QuarantinedRecord.of(WHERE, b"fp-1", b"{", "undecodable", "not JSON", NOW)
    assert record.kafka_key() == b"fp-1"


def test_the_quarantine_topics_are_checked_for_it() -> None:
    settings = Settings()
    for topic in (
        settings.alerts_quarantine_topic,
        settings.commands_quarantine_topic,
        settings.probe_results_quarantine_topic,
    ):
        assert settings.topic_spec(topic).record_bytes == QUARANTINE_RECORD_BYTES
    assert QUARANTINE_RECORD_BYTES < 1_048_588  # Kafka's default takes it
