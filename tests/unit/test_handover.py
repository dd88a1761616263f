"""The worker's consumer hands records over (streams/handover.py) with mode's ``wait_first``
semantics: the callback's result or exception, a wait for a callback that has to wait, the
suspension of the flow releasing a callback blocked on a full buffer; after such a wait it waits
for a held buffer to drain; its fetches wait briefly while a partition is held.

Run on the worker's own consumer class, built by the worker's app (not started: no broker)."""

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from models.settings import Settings
from streams import handover
from streams.app import _faust_app
from streams.fetching import _Consumer
from streams.handover import Handover, Resumed


def _consumer(tmp_path: Path) -> Any:
    """The worker's consumer (its app built as the worker builds it; never started)."""
    app = _faust_app(Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path), {})
    consumer = app.consumer
    consumer._thread.thread_loop.close()  # (the thread never starts: its loop is closed here)
    assert isinstance(consumer, _Consumer)
    return consumer


@pytest.fixture
async def service(tmp_path: Path) -> Any:
    return _consumer(tmp_path)  # (in the test's loop: faust's services take the running one)


def _tasks() -> int:
    return len(asyncio.all_tasks())


async def test_a_callback_that_finishes_at_once_is_the_whole_hand_over_without_a_task(
    service: Any,
) -> None:
    suspended = asyncio.Event()
    delivered: list[str] = []

    async def on_message(value: str) -> str:
        delivered.append(value)
        return value.upper()

    tasks = _tasks()
    callback, waiting = on_message("alert"), suspended.wait()
    spawned: list[int] = []
    loop = asyncio.get_running_loop()
    create_task = loop.create_task

    def counting(*args: Any, **kwargs: Any) -> Any:
        spawned.append(1)
        return create_task(*args, **kwargs)

    loop.create_task = counting  # type: ignore[method-assign]
    try:
        results = await service.wait_first(callback, waiting)
    finally:
        loop.create_task = create_task  # type: ignore[method-assign]
    assert delivered == ["alert"]
    assert (results.done, results.results, results.stopped) == ([callback], ["ALERT"], False)
    assert spawned == []
    assert _tasks() == tasks
    assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED  # (no "never awaited")


async def test_a_callback_that_has_to_wait_goes_on_in_a_task_until_it_is_done(service: Any) -> None:
    room = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def on_message() -> str:
        steps.append("decoded")
        await asyncio.sleep(0)  # a bare pass of the loop, then a wait for room
        steps.append("passed")
        await room
        steps.append("queued")
        return "queued"

    handing = asyncio.ensure_future(service.wait_first(on_message(), asyncio.Event().wait()))
    await asyncio.sleep(0.01)
    assert steps == ["decoded", "passed"]
    assert not handing.done()
    room.set_result(None)
    results = await asyncio.wait_for(handing, 5)
    assert steps == ["decoded", "passed", "queued"]
    assert results.results == ["queued"]
    assert not results.stopped


async def test_a_suspended_flow_releases_a_callback_blocked_on_a_full_queue(service: Any) -> None:
    suspended = asyncio.Event()
    outcome: list[str] = []

    async def on_message() -> None:
        try:
            await asyncio.get_running_loop().create_future()  # a queue that never has room
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    handing = asyncio.ensure_future(service.wait_first(on_message(), suspended.wait()))
    await asyncio.sleep(0.01)
    assert not handing.done()
    suspended.set()  # a rebalance begins
    results = await asyncio.wait_for(handing, 5)
    assert results.results == [True]
    assert not results.stopped
    await asyncio.sleep(0)
    assert outcome == ["cancelled"]


@pytest.mark.parametrize("fails", ["at once", "after a wait"])
async def test_a_callback_that_raises_raises_in_the_hand_over(service: Any, fails: str) -> None:
    waiting = asyncio.Event().wait()

    async def on_message() -> None:
        if fails == "after a wait":
            await asyncio.sleep(0.001)
        raise ValueError("undecodable record")

    with pytest.raises(ValueError, match="undecodable record"):
        await service.wait_first(on_message(), waiting)
    await asyncio.sleep(0)  # (mode's wait_first cancels its tasks; they end on the next pass)
    assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED


async def test_other_calls_are_mode_s_own(service: Any) -> None:
    ready = asyncio.Event()
    ready.set()
    results = await service.wait_first(ready)  # (Service.wait: an event, one waitable)
    assert results.done == [ready]
    assert results.results == [True]

    async def slow() -> None:
        await asyncio.sleep(5)

    results = await service.wait_first(slow(), asyncio.Event().wait(), timeout=0.05)
    assert results.done == []  # (the timeout ended it: neither finished)


async def test_resumed_passes_a_cancellation_into_the_coroutine() -> None:
    outcome: list[str] = []

    async def blocked() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    coro = blocked()
    pending = coro.send(None)
    task = asyncio.ensure_future(Resumed(coro, pending))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]


async def test_after_a_wait_for_room_the_next_record_waits_for_a_held_buffer_to_drain(
    service: Any,
) -> None:
    tp = TP("alerts", 0)
    service._buffered_partitions.add(tp)  # as faust's on_buffer_full
    room = asyncio.get_running_loop().create_future()

    async def on_message() -> str:
        await room  # a full buffer
        return "queued"

    handing = asyncio.ensure_future(service.wait_first(on_message(), asyncio.Event().wait()))
    await asyncio.sleep(0.01)
    room.set_result(None)
    await asyncio.sleep(0.05)
    assert not handing.done()  # queued, and waiting for the buffer to drain
    service.on_buffer_drop(tp)  # faust's pressure drop: the buffer is down to its low mark
    results = await asyncio.wait_for(handing, 5)
    assert results.results == ["queued"]
    assert tp not in service._buffered_partitions


async def test_a_wait_for_a_drain_ends_with_a_suspended_flow_or_its_limit(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service._buffered_partitions.add(TP("alerts", 0))  # (never dropped here)
    waiting = asyncio.ensure_future(service.until_drained())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    service.suspend_flow.set()  # a rebalance begins
    await asyncio.wait_for(waiting, 5)
    service.suspend_flow.clear()
    monkeypatch.setattr(handover, "HELD_WAIT_SECONDS", 0.05)
    await asyncio.wait_for(service.until_drained(), 5)  # (the limit, nothing else, ended it)


async def test_without_a_held_partition_a_hand_over_does_not_wait_for_a_drain(
    service: Any,
) -> None:
    async def on_message() -> str:
        await asyncio.sleep(0.01)
        return "queued"

    results = await asyncio.wait_for(service.wait_first(on_message(), asyncio.Event().wait()), 5)
    assert results.results == ["queued"]


async def test_while_a_partition_is_held_fetches_wait_briefly_for_the_others(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    async def faust_s(self: Any, timeout: float) -> Any:  # noqa: ASYNC109 - faust's fetch
        asked.append(timeout)
        return {}, set()

    monkeypatch.setattr(_Consumer.__mro__[2], "_wait_next_records", faust_s)
    quiet, busy = TP("commands", 0), TP("alerts", 0)
    service._active_partitions = {quiet, busy}
    await service._wait_next_records(1.0)
    service.on_buffer_full(busy)  # (faust: the busy partition leaves the active ones)
    await service._wait_next_records(1.0)
    assert asked == [1.0, handover.HELD_POLL_SECONDS]
    assert service.held() == (True, False)

    service.on_buffer_full(quiet)  # every partition held: wait for the first drop
    assert service.held() == (True, True)
    fetching = asyncio.ensure_future(service._wait_next_records(1.0))
    await asyncio.sleep(0.05)
    assert not fetching.done()
    service.on_buffer_drop(busy)
    await asyncio.wait_for(fetching, 5)
    assert asked[-1] == handover.HELD_POLL_SECONDS  # (the quiet one still held)
    service.on_buffer_drop(quiet)
    assert service.held() == (False, False)


def test_the_worker_s_consumer_hands_over_this_way() -> None:
    assert issubclass(_Consumer, Handover)
    assert _Consumer.wait_first is Handover.wait_first
    assert _Consumer._wait_next_records is Handover._wait_next_records
