"""What the publisher writes (exactly ``AlertRecord.to_bytes()``) and how it waits for Kafka."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka.errors import KafkaConnectionError
from hypothesis import given
from hypothesis import strategies as st

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.kafka import PublishError, _acknowledged, record_bytes
from tests.conftest import AM_FIXTURES, load_fixture

NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)

text = st.text(max_size=12)  # any Unicode a JSON body can carry (quotes, escapes, non-ASCII)
moments = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]))


def test_record_bytes_are_to_bytes_for_every_captured_payload() -> None:
    for path in sorted(AM_FIXTURES.glob("*.json")):
        if "request_log" in path.name or "legacy_v3" in path.name:
            continue
        for record in to_records(WebhookPayload.model_validate(load_fixture(path.name)), NOW):
            assert record_bytes(record) == record.to_bytes()


@given(
    labels=st.dictionaries(text, text, min_size=1, max_size=4),
    annotations=st.dictionaries(text, text, max_size=3),
    starts_at=moments,
    ends_at=st.none() | moments,
    generator_url=st.none() | text,
    group_key=text,
    truncated=st.integers(0, 2**64 - 1),
)
def test_record_bytes_are_to_bytes(
    labels: dict[str, str],
    annotations: dict[str, str],
    starts_at: datetime,
    ends_at: datetime | None,
    generator_url: str | None,
    group_key: str,
    truncated: int,
) -> None:
    record = AlertRecord(
        fingerprint="0123456789abcdef",
        status="firing",
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        receiver="team-é",
        group_key=group_key,
        truncated_alerts=truncated,
        received_at=NOW,
    )
    assert record_bytes(record) == record.to_bytes()


async def test_acknowledged_waits_for_every_record_and_never_cancels_one() -> None:
    loop = asyncio.get_running_loop()
    deliveries: list[asyncio.Future[object]] = [loop.create_future() for _ in range(4)]
    last = [deliveries[1], deliveries[3]]  # the last record of each of two partitions
    waiting = asyncio.ensure_future(_acknowledged(last, deliveries))
    for future in last:
        future.set_result(None)
    await asyncio.sleep(0)
    assert not waiting.done()  # earlier records of the partitions are still pending
    deliveries[0].set_result(None)
    deliveries[2].set_result(None)
    await asyncio.wait_for(waiting, 1)

    pending: list[asyncio.Future[object]] = [loop.create_future() for _ in range(2)]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(_acknowledged(pending[-1:], pending), 0.01)
    assert not any(f.cancelled() for f in pending)  # the ledger still learns their outcome


async def test_acknowledged_fails_at_the_first_refused_record() -> None:
    loop = asyncio.get_running_loop()
    deliveries: list[asyncio.Future[object]] = [loop.create_future() for _ in range(3)]
    waiting = asyncio.ensure_future(_acknowledged(deliveries, deliveries))
    deliveries[0].set_exception(KafkaConnectionError())
    with pytest.raises(PublishError, match="KafkaConnectionError"):
        await asyncio.wait_for(waiting, 1)
    assert not deliveries[1].done()
