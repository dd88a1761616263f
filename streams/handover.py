"""How the worker's consumer hands fetched records to its agents' stream buffers: without tasks of
its own per record, and without leaving a buffer empty while records wait in Kafka.

faust's consumer (``Consumer._drain_messages``) hands every record over as
``await self.wait_first(callback(message), self.suspend_flow.wait())``: ``mode``'s ``wait_first``
wraps both in tasks, adds two more for the service's ``stopped`` and ``crashed`` events, waits for
the first with ``asyncio.wait`` and cancels the rest. The callback (the conductor's
``on_message``) decodes the record and puts it in the stream's buffer (4,096 records). Three
costs follow, which :class:`Handover` removes (``bench.pipeline_bench``, bench/README.md):

- **Four tasks per record.** Nearly always the callback finishes at once (the buffer has room).
  Its first step now runs where it is awaited; when it finishes there, that is the whole
  hand-over. When it has to wait (a full buffer, flow control held during a rebalance, a full
  producer buffer), the started callback goes on in a task under ``mode``'s ``wait_first`` as
  before, so a suspended flow still releases a consumer blocked on a full buffer; an exception
  raises here as it did there.
- **A record at a time into a full buffer.** Over a backlog the agent is the slower side, so the
  buffer stays full: each record taken from it let one more in, every one of them through that
  slow path (the conductor's own task and wait besides ours). After a hand-over that had to wait
  the consumer now waits until a buffer has drained to faust's low mark (1,638 records, when faust
  fetches a held partition again: ``on_buffer_drop``), then hands the next records over the quick
  way; at most :data:`HELD_WAIT_SECONDS`, and never past a suspension of the flow.
- **A buffer left empty.** faust stops fetching a partition whose buffer is under pressure (3,276
  records) until it drains. Meanwhile the fetch of the other partitions waits up to a second and
  is not cut short when the held one comes back; with every partition held, the fetcher sleeps a
  second. A worker draining one partition (a storm of one group, its commands and probe
  partitions quiet) empties 4,096 records in about as long, so its buffer ran dry before the wait
  ended: batches of 184 records on average instead of 500. While a partition is held a fetch now
  waits at most :data:`HELD_POLL_SECONDS`, and with every partition held the fetcher waits for
  the first drop instead of sleeping.

This leans on faust's ``_drain_messages`` (the two coroutines it passes), ``_wait_next_records``,
``_buffered_partitions`` and ``on_buffer_drop`` (the dependency is pinned to the 0.15 series);
tests/unit/test_handover.py holds each part to them, and the integration suite runs the worker
with it.
"""

import asyncio
import contextlib
from collections.abc import Coroutine, Generator, Iterator
from typing import Any

from mode.services import WaitResults

__all__ = ["HELD_POLL_SECONDS", "HELD_WAIT_SECONDS", "Handover", "Resumed"]

#: The longest wait of a fetch while a partition is held for a full buffer: a drained buffer gets
#: records again within it (faust then asks again, with the partition back).
HELD_POLL_SECONDS = 0.02
#: The longest wait for a held buffer to drain: faust's own sleep with every partition held.
HELD_WAIT_SECONDS = 1.0


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


class Handover:
    """A faust ``Consumer`` mixin (see the module's docstring)."""

    _drained: asyncio.Event | None = None

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109
        if len(coros) != 2 or timeout is not None or not all(map(asyncio.iscoroutine, coros)):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc,no-any-return]
        callback, suspended = coros  # (_drain_messages: the record's callback, the suspension)
        try:
            pending = callback.send(None)
        except StopIteration as done:
            suspended.close()  # (never started: nothing to wait for)
            return WaitResults([callback], [done.value], False)
        except BaseException:
            suspended.close()
            raise
        results: WaitResults = await super().wait_first(Resumed(callback, pending), suspended)  # type: ignore[misc]
        if results.done and results.done[0] is not suspended:
            await self.until_drained()
        return results

    async def until_drained(self) -> None:
        """With a partition held for a full buffer, wait for a buffer to drain to faust's low
        mark (or for the flow to be suspended, the consumer to stop, or
        :data:`HELD_WAIT_SECONDS`)."""
        consumer: Any = self
        if not consumer._buffered_partitions:
            return
        with self._next_drop() as drained:
            await super().wait_first(  # type: ignore[misc]
                drained.wait(), consumer.suspend_flow.wait(), timeout=HELD_WAIT_SECONDS
            )

    @contextlib.contextmanager
    def _next_drop(self) -> Iterator[asyncio.Event]:
        """An event :meth:`on_buffer_drop` sets, while the block waits on it."""
        drained = self._drained = asyncio.Event()
        try:
            yield drained
        finally:
            self._drained = None

    def on_buffer_drop(self, tp: Any) -> None:
        super().on_buffer_drop(tp)  # type: ignore[misc]
        if self._drained is not None:
            self._drained.set()

    def held(self) -> tuple[bool, bool]:
        """(some assigned partition is held back for a full buffer, every one is)."""
        consumer: Any = self
        if not consumer._buffered_partitions or consumer.app.client_only:
            return False, False
        return True, consumer.flow_active and not consumer._get_active_partitions()

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 - faust's
        if self.held()[1]:
            with self._next_drop() as drained:
                await self.wait_for_stopped(drained, timeout=HELD_WAIT_SECONDS)  # type: ignore[attr-defined]
        if self.held()[0]:
            timeout = min(timeout, HELD_POLL_SECONDS)
        return await super()._wait_next_records(timeout)  # type: ignore[misc]
