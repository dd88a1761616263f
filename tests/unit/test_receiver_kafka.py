"""What the publisher writes (exactly ``AlertRecord.to_bytes()``) and how it waits for Kafka."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from hypothesis import given
from hypothesis import strategies as st

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.kafka import (
    MAX_RECORD_BYTES,
    KafkaAlertPublisher,
    PublishError,
    PublishResult,
    RecordTooLarge,
    _acknowledged,
    record_bytes,
)
from receiver.ledger import SUPERSEDED_GRACE, InDoubtLedger
from tests.conftest import AM_FIXTURES, load_fixture

NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)

# Any Unicode a JSON body can carry (quotes, escapes, non-ASCII) and the store can hold (no NUL).
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
#: Any time a record may carry (models.alert.RecordTime: from 1970, before 9000), in two zones.
moments = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(8999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
)


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


class StubProducer:
    """aiokafka's producer as the publisher uses it, without a broker: ``send`` queues a record and
    returns its delivery future, which the test settles (or at once, with ``acknowledge``)."""

    def __init__(self, *, acknowledge: bool = True, buffer: int | None = None) -> None:
        self.acknowledge = acknowledge
        self.buffer = buffer
        """Records after which ``send`` waits for ``room`` (aiokafka's full accumulator)."""
        self.room = asyncio.Event()
        self.sent: list[bytes] = []
        self.deliveries: list[asyncio.Future[object]] = []
        self._queued = asyncio.Event()

    async def until_sent(self, count: int) -> None:
        """Return once ``count`` records were queued (the publisher runs as another task)."""
        while len(self.deliveries) < count:
            self._queued.clear()
            await self._queued.wait()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send(
        self, topic: str, *, key: bytes, value: bytes, partition: int
    ) -> "asyncio.Future[object]":
        if len(value) > 1_048_576:  # aiokafka's max_request_size check, before queueing
            raise MessageSizeTooLargeError()
        if self.buffer is not None and len(self.sent) >= self.buffer:
            await self.room.wait()
        self.sent.append(value)
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.acknowledge:
            delivery.set_result(None)
        self.deliveries.append(delivery)
        self._queued.set()
        return delivery

    def acknowledge_all(self) -> None:
        for delivery in self.deliveries:
            if not delivery.done():
                delivery.set_result(None)


def stub_publisher(producer: StubProducer, **options: object) -> KafkaAlertPublisher:
    return KafkaAlertPublisher("unused:9092", "alerts", 3, 5.0, producer=producer, **options)  # type: ignore[arg-type]


def fixture_records(
    name: str = "alertmanager-v0.25.0-captured__firing_three_alerts.json",
) -> list[AlertRecord]:
    return to_records(WebhookPayload.model_validate(load_fixture(name)), NOW)


async def test_publisher_refuses_a_record_too_large_before_sending_any() -> None:
    producer = StubProducer()
    small, huge = fixture_records()[:2]
    huge = huge.model_copy(update={"annotations": {"description": "x" * 1_100_000}})
    with pytest.raises(RecordTooLarge) as refused:
        await stub_publisher(producer).publish([small, huge])
    assert refused.value.index == 1
    assert producer.sent == []  # not half a payload written for a 413


async def test_broker_refusing_a_record_as_too_large_is_permanent_not_503() -> None:
    # The broker's message.max.bytes may be below MAX_RECORD_BYTES: its refusal is as permanent.
    producer = StubProducer(acknowledge=False)
    publisher = stub_publisher(producer)
    publishing = asyncio.ensure_future(publisher.publish(fixture_records()))
    await asyncio.wait_for(producer.until_sent(3), 1)
    producer.deliveries[0].set_result(None)
    producer.deliveries[1].set_exception(MessageSizeTooLargeError())
    producer.deliveries[2].set_result(None)
    with pytest.raises(RecordTooLarge) as refused:
        await asyncio.wait_for(publishing, 1)
    assert refused.value.index == 1
    assert len(record_bytes(fixture_records()[1])) < MAX_RECORD_BYTES


async def test_an_alert_firing_again_after_resolving_is_written_though_a_200_was_lost() -> None:
    producer = StubProducer()
    clock = [0.0]
    publisher = stub_publisher(producer, clock=lambda: clock[0])
    firing = fixture_records()[:1]
    resolved = [firing[0].model_copy(update={"status": "resolved", "ends_at": NOW})]
    await publisher.publish(firing)
    publisher.note_unanswered(firing)  # Alertmanager hung up before the 200
    clock[0] = 60
    assert await publisher.publish(resolved) == (1, 0)
    clock[0] = 120
    refired = [firing[0].model_copy(update={"received_at": NOW + timedelta(minutes=2)})]
    assert await publisher.publish(refired) == (1, 0)
    statuses = [AlertRecord.from_bytes(value).status for value in producer.sent]
    assert statuses == ["firing", "resolved", "firing"]


async def test_a_retry_while_the_first_attempt_awaits_acks_is_not_written_twice() -> None:
    producer = StubProducer(acknowledge=False)
    publisher = stub_publisher(producer)
    records = fixture_records()
    first = asyncio.ensure_future(publisher.publish(records))  # its sender then hangs up
    await asyncio.wait_for(producer.until_sent(3), 1)
    retry = asyncio.ensure_future(publisher.publish(records))
    # Kafka acknowledges after the retry has run up to its own wait for acknowledgements.
    asyncio.get_running_loop().call_soon(producer.acknowledge_all)
    assert await asyncio.wait_for(retry, 1) == (0, 3)
    assert await asyncio.wait_for(first, 1) == (3, 0)
    assert len(producer.sent) == 3
    assert len(publisher.ledger) == 0  # both answered: nothing left in doubt


async def test_a_retry_while_the_first_attempt_waits_for_buffer_space_is_not_written_twice() -> None:
    producer = StubProducer(buffer=2)
    publisher = stub_publisher(producer)
    records = fixture_records()
    first = asyncio.ensure_future(publisher.publish(records))
    await asyncio.wait_for(producer.until_sent(2), 1)  # the third waits for room in the buffer
    retry = asyncio.ensure_future(publisher.publish(records))
    asyncio.get_running_loop().call_soon(producer.room.set)
    assert await asyncio.wait_for(retry, 1) == (0, 3)
    assert await asyncio.wait_for(first, 1) == (3, 0)
    assert len(producer.sent) == 3


async def test_a_retry_of_a_refused_attempt_waits_for_its_late_acknowledgement() -> None:
    producer = StubProducer(acknowledge=False)
    publisher = stub_publisher(producer)
    records = fixture_records()
    with pytest.raises(PublishError):
        await publisher.publish(records, ack_budget=0)
    retry = asyncio.ensure_future(publisher.publish(records))
    asyncio.get_running_loop().call_soon(producer.acknowledge_all)
    assert await asyncio.wait_for(retry, 1) == (0, 3)
    assert len(producer.sent) == 3


async def test_a_retry_of_a_record_superseded_while_it_was_written_is_not_written_after_it() -> None:
    """HA Alertmanagers while Kafka is slow: an alert's firing payload is still being written
    when its resolved payload arrives; the firing's sender gets a 503 and retries. Writing the
    firing again would put it after the resolved record (the alert would fire for good); a
    genuine re-fire of the same content much later is still written."""
    clock = [0.0]
    producer = StubProducer(acknowledge=False)
    publisher = stub_publisher(producer, clock=lambda: clock[0])
    firing = fixture_records()[:1]
    resolved = [firing[0].model_copy(update={"status": "resolved", "ends_at": NOW})]
    first = asyncio.ensure_future(publisher.publish(firing, ack_budget=0.05))
    await producer.until_sent(1)
    second = asyncio.ensure_future(publisher.publish(resolved))
    await producer.until_sent(2)
    with pytest.raises(PublishError):
        await first  # 503: its sender retries the firing payload
    producer.acknowledge_all()  # Kafka wrote both after all
    await second
    producer.acknowledge = True
    retry = [firing[0].model_copy(update={"received_at": NOW + timedelta(seconds=10)})]
    assert await publisher.publish(retry) == PublishResult(written=0, deduplicated=1)
    assert [AlertRecord.from_bytes(v).status for v in producer.sent] == ["firing", "resolved"]
    clock[0] += SUPERSEDED_GRACE + 1  # much later the same alert really fires again
    refire = [firing[0].model_copy(update={"received_at": NOW + timedelta(minutes=30)})]
    assert await publisher.publish(refire) == PublishResult(written=1, deduplicated=0)


async def test_a_full_ledger_drops_what_expired_before_refusing() -> None:
    """A payload refused as "too many in doubt" sends nothing, so nothing else pruned the ledger:
    once full it refused every new alert for good, though its entries had long expired."""
    producer = StubProducer()
    clock = [0.0]
    publisher = stub_publisher(producer, clock=lambda: clock[0], retry_dedup_seconds=60)
    publisher.ledger = InDoubtLedger(lambda: clock[0], 60, max_entries=2)
    a, b, c = fixture_records()
    await publisher.publish([a, b])
    publisher.note_unanswered([a, b])  # two in doubt: the cap
    with pytest.raises(PublishError, match="too many deliveries in doubt"):
        await publisher.publish([c])
    clock[0] = 10_000  # long past the window
    assert await publisher.publish([c]) == PublishResult(written=1, deduplicated=0)
