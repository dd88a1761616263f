"""The consumer's hand-over of a record (streams/eager_delivery.py) keeps mode's ``wait_first``
semantics: the callback's result or exception, a wait for a callback that has to wait, and the
suspension of the flow releasing a callback blocked on a full queue."""

import asyncio
import inspect
from typing import Any

import mode
import pytest

from streams.eager_delivery import EagerDelivery, Resumed
from streams.fetching import _Consumer


class _Service(EagerDelivery, mode.Service):
    """The mixin over mode's own Service, as over faust's consumer."""


def _tasks() -> int:
    return len(asyncio.all_tasks())


async def test_a_callback_that_finishes_at_once_is_the_whole_hand_over_without_a_task() -> None:
    service = _Service()
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


async def test_a_callback_that_has_to_wait_goes_on_in_a_task_until_it_is_done() -> None:
    service = _Service()
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


async def test_a_suspended_flow_releases_a_callback_blocked_on_a_full_queue() -> None:
    service = _Service()
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
async def test_a_callback_that_raises_raises_in_the_hand_over(fails: str) -> None:
    service = _Service()
    waiting = asyncio.Event().wait()

    async def on_message() -> None:
        if fails == "after a wait":
            await asyncio.sleep(0.001)
        raise ValueError("undecodable record")

    with pytest.raises(ValueError, match="undecodable record"):
        await service.wait_first(on_message(), waiting)
    await asyncio.sleep(0)  # (mode's wait_first cancels its tasks; they end on the next pass)
    assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED


async def test_other_calls_are_mode_s_own() -> None:
    service = _Service()
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


def test_the_worker_s_consumer_hands_over_eagerly() -> None:
    assert issubclass(_Consumer, EagerDelivery)
    assert _Consumer.wait_first is EagerDelivery.wait_first
