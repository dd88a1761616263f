"""The persist step: poison is refused with a reason; a database failure is retried, never skipped."""

from datetime import UTC, datetime

import pytest

from store.alerts import AlertStore, create_schema
from store.db import async_engine, sync_engine
from streams.persist import InvalidRecord, decode_alert, store_alert
from tests.unit.test_store_alerts import record


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty record value"),
        (b"{not json", "not an alert record"),
        (b'{"status": "firing"}', "not an alert record"),
    ],
)
def test_poison_records_are_invalid_with_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        decode_alert(raw)


def test_decode_round_trip() -> None:
    original = record()
    assert decode_alert(original.to_bytes()) == original


async def test_database_failure_is_retried_until_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = async_engine(url)
    store = AlertStore(engine)
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        # The database comes back (its table appears) after the third failed attempt.
        delays.append(delay)
        if len(delays) == 3:
            create_schema(sync_engine(url))

    try:
        await store_alert(store, record(), sleep=sleep, max_delay=0.5)
        stored = await store.get(record().fingerprint)
    finally:
        await engine.dispose()
    assert delays == [0.2, 0.4, 0.5]
    assert stored is not None
    assert stored["last_received_at"] == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
