"""The in-doubt ledger: what a refused payload leaves behind so a retry does not write it twice."""

import asyncio

from models.alert import AlertRecord
from models.alertmanager import WebhookPayload, to_records
from receiver.ledger import InDoubtLedger, identity
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
    key = identity(records()[0])
    ledger.refuse([(key, done)])
    assert ledger.lookup(key) is done
    clock.now += 61
    assert ledger.lookup(key) is None
    assert len(ledger) == 0


async def test_pending_delivery_decides_later() -> None:
    clock = Clock()
    ledger = InDoubtLedger(clock, window=60)
    loop = asyncio.get_running_loop()
    late_ok: asyncio.Future[object] = loop.create_future()
    late_fail: asyncio.Future[object] = loop.create_future()
    ok_key, fail_key = identity(records()[0]), identity(records()[1])
    ledger.refuse([(ok_key, late_ok), (fail_key, late_fail)])
    assert ledger.lookup(ok_key) is late_ok  # a retry now waits on the original delivery
    late_ok.set_result("offset 9")
    late_fail.set_exception(ConnectionError("broker gone"))
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert ledger.lookup(ok_key) is late_ok
    assert ledger.lookup(fail_key) is None  # Kafka did not take it: the retry must write it
    clock.now += 30
    assert ledger.lookup(ok_key) is late_ok
    clock.now += 31
    assert ledger.lookup(ok_key) is None


async def test_failed_before_refusal_is_not_noted_and_cap_applies() -> None:
    ledger = InDoubtLedger(Clock(), window=60, max_entries=1)
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[object] = loop.create_future()
    failed.set_exception(ConnectionError("broker gone"))
    pending: asyncio.Future[object] = loop.create_future()
    first, second = identity(records()[0]), identity(records()[1])
    ledger.refuse([(first, failed)])
    assert (len(ledger), ledger.full) == (0, False)
    ledger.refuse([(second, pending)])
    assert ledger.full
    pending.cancel()
