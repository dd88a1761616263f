"""The worker's batches of alert records: a short window while records arrive one by one, a
longer one while more wait in Kafka.

Why not faust's ``Stream.take_events`` as it is: it hands out its buffer when its window ends, and
over a backlog the buffer fills only at faust's pace (about 10,000 records/s here). A window short
enough to page quickly at a steady rate (0.01 s: the webhook → page p50 at 200 alerts/s a fifth
lower than with 0.02 s) then shrinks the batches over a backlog, and every transaction, relay
publish and sinks' poll costs more per alert: a storm drained 4-8 % slower (bench/README.md).

:func:`take_batches` is ``take_events`` (faust-streaming 0.15, its buffering, its strict
``max_``, its acknowledgements after the batch is handled) with one change: when the window
ends and the buffer is not full, it keeps gathering, one window at a time up to ``longest`` in
all, while the broker's last fetch said that records past the last one taken wait in a partition
the batch read (the consumer's high watermark, already known: nothing is asked of the broker).
At a steady rate a batch ends after ``window``; over a backlog it fills as it did with a window of
``longest``.

It uses the stream's own hooks as ``take_events`` does (``add_processor``, ``_enable_passive``,
``enable_acks``, ``ack``), so it is held to faust-streaming's 0.15 series (pyproject.toml);
tests/unit/test_batching.py runs it on the test broker.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from mode.utils.futures import notify

if TYPE_CHECKING:
    from models.settings import Settings

__all__ = ["HighWater", "batches_of", "take_batches", "worker_batches"]

log = logging.getLogger(__name__)

#: The broker's high watermark of a partition (faust's ``TP``) as last fetched, None if unknown
#: (faust's ``Consumer.highwater``; aiokafka refuses a partition no longer assigned: not waiting).
HighWater = Callable[[Any], int | None]


class _Buffer:
    """The batch being gathered: faust's take_events buffer, and each partition's last offset."""

    def __init__(self, stream: Any, max_: int, highwater: HighWater) -> None:
        self.stream = stream
        self.max_ = max_
        self.highwater = highwater
        self.events: list[Any] = []
        self.last: dict[Any, int] = {}  # partition (faust's TP) → offset of its last event here
        self.full = asyncio.Event()
        self.consumed = asyncio.Event()
        self.consuming: asyncio.Future[None] | None = None

    async def add(self, value: Any) -> Any:
        """The stream's processor: buffers each event; none while a batch is handled, and no
        more than ``max_`` (it waits for the batch to be handled)."""
        stream = self.stream
        try:
            if self.consuming is not None:
                try:
                    await self.consuming
                finally:
                    self.consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("batch buffer found current_event is None")
            self.events.append(event)
            self.last[event.message.tp] = event.message.offset
            if len(self.events) >= self.max_:
                self.full.set()
                self.consumed.clear()
                await stream.wait(self.consumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as take_events: the stream crashes with it
            stream.log.exception("Error adding to the batch buffer: %r", exc)
            await stream.crash(exc)
        return value

    def waiting(self) -> bool:
        """Records past the last one buffered wait in one of the batch's partitions."""
        for tp, offset in self.last.items():
            high = self._highwater(tp)
            if high is not None and high > offset + 1:
                return True
        return False

    def _highwater(self, tp: Any) -> int | None:
        """The partition's high watermark; None when not known, or no longer to be asked (a
        rebalance revoked the partition, the consumer is stopping): the batch is not held."""
        try:
            return self.highwater(tp)
        except Exception as exc:  # noqa: BLE001 - any answer but a number means "not known"
            log.debug("no high watermark for %s: %s", tp, type(exc).__name__)
            return None

    async def gather(self, window: float, longest: float) -> None:
        """Until full, or ``window`` passed and none wait, or ``longest`` passed."""
        stream = self.stream
        loop = asyncio.get_running_loop()
        started = loop.time()
        await stream.wait_for_stopped(self.full, timeout=window)
        while self.events and not self.full.is_set() and not stream.should_stop and self.waiting():
            left = longest - (loop.time() - started)
            if left <= 0:
                return
            await stream.wait_for_stopped(self.full, timeout=min(window, left))

    async def handed(self) -> None:
        """The batch was handled: acknowledge it and let the processor buffer again."""
        events = list(self.events)
        self.events.clear()
        self.last.clear()
        for event in events:
            await self.stream.ack(event)
        notify(self.consuming)
        self.full.clear()
        self.consumed.set()


async def take_batches(
    stream: Any, max_: int, window: float, longest: float, highwater: HighWater
) -> AsyncIterator[list[Any]]:
    """Batches of at most ``max_`` events of ``stream``, each acknowledged once the caller is done
    with it; see the module's docstring for when a batch ends."""
    buffer = _Buffer(stream, max_, highwater)
    enable_acks: bool = stream.enable_acks
    stream.enable_acks = False  # acknowledged here, once the batch is handled
    stream.add_processor(buffer.add)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            await buffer.gather(window, longest)
            if not buffer.events:
                continue
            # The processor adds nothing while the batch is handled.
            buffer.consuming = asyncio.get_running_loop().create_future()
            try:
                yield list(buffer.events)
            finally:
                await buffer.handed()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(buffer.add)


def batches_of(
    stream: Any, max_: int, window: float, longest: float, highwater: HighWater
) -> AsyncIterator[list[Any]]:
    """:func:`take_batches` of ``stream``, registered with it as faust registers its own buffering
    generators, so that the stream closes it when it stops (its ``finally`` acknowledges and
    detaches the processor) even if the agent let it go."""
    batches = take_batches(stream, max_, window, max(window, longest), highwater)
    agens = getattr(stream, "_active_agens", None)
    if agens is not None:
        agens.add(batches)
    return batches


def worker_batches(
    stream: Any, app: Any, settings: "Settings", max_: int | None = None
) -> AsyncIterator[list[Any]]:
    """:func:`batches_of` ``stream`` of the faust ``app`` as the worker takes them under
    ``settings`` (its windows, its batch size unless ``max_``), the watermarks from the app's
    consumer. bench/faust_noop.py batches the same way."""
    return batches_of(
        stream,
        settings.batch_size if max_ is None else max_,
        settings.batch_window_seconds,
        settings.batch_backlog_window_seconds,
        app.consumer.highwater,
    )
