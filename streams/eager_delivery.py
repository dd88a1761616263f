"""faust's hand-over of each fetched record to the agents, without four tasks per record.

Why: faust's consumer hands every record to its agents' queues as
``await self.wait_first(callback(message), self.suspend_flow.wait())`` (``_drain_messages``):
``mode``'s ``wait_first`` wraps both in tasks, adds two more for the service's ``stopped`` and
``crashed`` events, waits for the first with ``asyncio.wait`` and cancels the rest. The callback
(the conductor's ``on_message``) nearly always finishes without waiting: it decodes the record
and puts it on a queue with room. Those four tasks were about a third of the worker's loop spent
outside sevflow's own work while it drained a backlog (py-spy of faust's no-op agent).

:class:`EagerDelivery` runs the callback's first step at once, where it is awaited. When it
finishes there (the queue had room), that is the whole hand-over, as it would have been in its
task's first step. When it has to wait (a full queue, flow control held during a rebalance,
a full producer buffer), the started callback goes on in a task and ``wait_first`` waits for it
or for the suspension of the flow as before, so a rebalance still releases a consumer blocked on
a full queue. A callback that raises raises here, as ``wait_first`` raised its exception.

The override leans on faust's ``_drain_messages`` calling ``wait_first`` with exactly those two
coroutines (the dependency is pinned to the 0.15 series); any other call goes to ``mode``'s own.
tests/unit/test_eager_delivery.py holds both paths to it.
"""

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from mode.services import WaitResults

__all__ = ["EagerDelivery", "Resumed"]


class Resumed:
    """An awaitable that carries on a coroutine whose first step has run and is waiting on
    ``pending`` (what that step yielded: a future, or ``None`` for a bare pass of the loop)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                yield pending  # the awaiting task waits on it, as it would on the coroutine's
            except BaseException as exc:  # noqa: BLE001 - a cancellation thrown in, passed on
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return stop.value


class EagerDelivery:
    """A faust ``Consumer`` mixin: each record's callback starts where it is awaited."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109
        if len(coros) != 2 or timeout is not None or not all(map(asyncio.iscoroutine, coros)):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc,no-any-return]
        callback, suspended = coros
        try:
            pending = callback.send(None)
        except StopIteration as done:
            suspended.close()  # (never started: nothing to wait for)
            return WaitResults([callback], [done.value], False)
        except BaseException:
            suspended.close()
            raise
        return await super().wait_first(  # type: ignore[misc,no-any-return]
            Resumed(callback, pending), suspended
        )
