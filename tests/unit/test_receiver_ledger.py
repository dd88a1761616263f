"""The in-doubt ledger: what a refused payload leaves behind so a retry does not write it twice."""

import asyncio

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.ledger import Delivery, InDoubtLedger, identity
from tests.conftest import load_fixture
from tests.unit.test_receiver_http import NOW


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def records() -> list[AlertRecord]:
    document = load_fixture("alertmanager-v0.25.0-captured__firing_three_alerts.json")
    return to_records(WebhookPayload.model_validate(document), NOW)


def refused(ledger: InDoubtLedger, record: AlertRecord, future: "asyncio.Future[object]") -> Delivery:
    """What a publish that sent ``record`` and was not answered 2xx leaves in the ledger."""
    entry = ledger.sending(record)
    ledger.queued(entry, future)
    ledger.refuse([entry])
    return entry


def outcome(ledger: InDoubtLedger, record: AlertRecord) -> "asyncio.Future[object] | None":
    entry = ledger.lookup(record)
    return None if entry is None else entry.outcome()


def test_identity_ignores_received_at_only() -> None:
    first = records()[0]
    later = first.model_copy(update={"received_at": NOW.replace(hour=13)})
    resolved = first.model_copy(update={"status": "resolved"})
    assert identity(first) == identity(later)
    assert identity(first) != identity(resolved)


async def test_acknowledged_before_refusal_is_remembered_for_the_window() -> None:
    clock = Clock()
    ledger = InDoubtLedger(clock, window=60)
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    done.set_result("offset 7")
    record = records()[0]
    refused(ledger, record, done)
    assert outcome(ledger, record) is done
    clock.now += 61
    assert ledger.lookup(record) is None
    assert len(ledger) == 0


async def test_pending_delivery_decides_later() -> None:
    clock = Clock()
    ledger = InDoubtLedger(clock, window=60)
    loop = asyncio.get_running_loop()
    late_ok: asyncio.Future[object] = loop.create_future()
    late_fail: asyncio.Future[object] = loop.create_future()
    ok_record, fail_record = records()[:2]
    refused(ledger, ok_record, late_ok)
    refused(ledger, fail_record, late_fail)
    assert outcome(ledger, ok_record) is late_ok  # a retry now waits on the original delivery
    late_ok.set_result("offset 9")
    late_fail.set_exception(ConnectionError("broker gone"))
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert outcome(ledger, ok_record) is late_ok
    assert ledger.lookup(fail_record) is None  # Kafka did not take it: the retry must write it
    clock.now += 30
    assert outcome(ledger, ok_record) is late_ok
    clock.now += 31
    assert ledger.lookup(ok_record) is None


async def test_failed_before_refusal_is_not_noted_and_cap_applies() -> None:
    ledger = InDoubtLedger(Clock(), window=60, max_entries=1)
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[object] = loop.create_future()
    failed.set_exception(ConnectionError("broker gone"))
    pending: asyncio.Future[object] = loop.create_future()
    first, second = records()[:2]
    refused(ledger, first, failed)
    assert (len(ledger), ledger.full) == (0, False)
    refused(ledger, second, pending)
    assert ledger.full
    pending.cancel()


async def test_newer_content_of_an_alert_replaces_the_remembered_record() -> None:
    # firing (its 200 lost: remembered) -> resolved (written) -> firing again, same startsAt: the
    # re-fire is identical to the remembered firing, yet it is news and must be written.
    ledger = InDoubtLedger(Clock(), window=900)
    firing = records()[0]
    resolved = firing.model_copy(update={"status": "resolved", "ends_at": NOW})
    ledger.unanswered([firing])
    assert ledger.lookup(firing) is not None  # a retry of that notification is not rewritten
    assert ledger.lookup(resolved) is None
    ledger.answered([ledger.sending(resolved)])
    assert ledger.lookup(firing) is None
    assert len(ledger) == 0


async def test_a_stale_attempt_does_not_bring_back_a_superseded_record() -> None:
    ledger = InDoubtLedger(Clock(), window=900)
    loop = asyncio.get_running_loop()
    firing = records()[0]
    resolved = firing.model_copy(update={"status": "resolved", "ends_at": NOW})
    old = ledger.sending(firing)
    ledger.queued(old, loop.create_future())
    new = ledger.sending(resolved)
    ledger.queued(new, loop.create_future())
    ledger.refuse([old])  # the firing payload gave up after the resolved one was sent
    ledger.unanswered([firing])
    # The firing's retry is answered by the resolved record's write, never written after it.
    assert ledger.lookup(firing) is new
    assert ledger.lookup(resolved) is new


async def test_the_same_alert_on_another_route_is_its_own_stream() -> None:
    ledger = InDoubtLedger(Clock(), window=900)
    record = records()[0]
    elsewhere = record.model_copy(update={"receiver": "other-team"})
    ledger.unanswered([record])
    ledger.answered([ledger.sending(elsewhere)])
    assert ledger.lookup(record) is not None


async def test_in_flight_records_are_found_and_forgotten_once_answered() -> None:
    ledger = InDoubtLedger(Clock(), window=900, max_entries=1)
    record = records()[0]
    entry = ledger.sending(record)
    waiter = ledger.lookup(record)
    assert waiter is entry  # a retry arriving while it is being queued finds it
    follower = entry.outcome()
    delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    ledger.queued(entry, delivery)
    assert not ledger.full  # in flight is not in doubt
    delivery.set_result("offset 3")
    assert await asyncio.wait_for(follower, 1) == "offset 3"
    ledger.answered([entry])
    assert len(ledger) == 0


async def test_a_record_that_could_not_be_queued_fails_its_waiters_and_is_forgotten() -> None:
    ledger = InDoubtLedger(Clock(), window=900)
    record = records()[0]
    entry = ledger.sending(record)
    follower = entry.outcome()
    ledger.not_queued(entry)
    assert follower.cancelled()
    assert ledger.lookup(record) is None
