"""While records flow, the worker's fetches are answered after a short wait, not at the first one.

Why: faust's consumer asks with aiokafka's ``fetch_min_bytes`` of 1, so the broker answers a fetch
as soon as one record is there. At a steady rate from the receiver (each alert produced on its
own, milliseconds apart) that is a fetch per alert, and faust's work per fetch — the request for
every partition and its decoding in the consumer's thread, the hand-over to the agents' loop, the
stream's wake-ups — is the same for one record as for fifty: at 200 records/s faust's no-op agent
took 800 µs of CPU per record (bench/README, "Fetches").

With ``SEVFLOW_FETCH_WAIT_SECONDS`` set, while records flow the worker's consumer asks for
:data:`FETCH_MIN_BYTES` with that wait: the broker holds the fetch until that much is there or the
wait is over, and a steady stream comes in one fetch per wait with everything that arrived
meanwhile. A backlog meets the minimum at once and is fetched as fast as before. Once a fetch
comes back empty, the consumer asks as faust does again (the first record answers it, or 1.5 s
pass): an idle worker polls no more often than before, and the first alert after a quiet spell is
not held. The wait adds to an alert's latency about half itself (0.02 s at 200 alerts/s: a sixth
less CPU per alert, 5-13 ms more on the worker's hop), and at low rates it saves nothing, so it
is off by default: a setting for deployments that take steady high rates.

faust builds its aiokafka consumer itself and passes neither setting on. aiokafka reads both from
its fetcher each time it builds a request, and tells from each fetch whether it brought records:
:func:`adapt_fetches` sets them there after each fetch. Those are aiokafka's private attributes
(the dependency is pinned to its 0.14 series); tests/unit/test_fetching.py holds a real consumer
on the test broker to this behaviour.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_kafka

from streams.handover import Handover

__all__ = ["FETCH_MIN_BYTES", "FetchingApp", "adapt_fetches"]

#: The size a fetch waits for while records flow: more than a steady stream of alerts brings
#: within the wait, far less than a backlog's fetch (faust's 1 MiB per partition).
FETCH_MIN_BYTES = 1 << 20


def adapt_fetches(consumer: aiokafka.AIOKafkaConsumer, wait: float) -> None:
    """After each fetch of the started ``consumer``: if it brought records, the next ones wait
    up to ``wait`` seconds for :data:`FETCH_MIN_BYTES`; if not, they are answered at the first
    record again (with the consumer's own settings)."""
    fetcher = consumer._fetcher
    idle = (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms)
    flowing = (FETCH_MIN_BYTES, round(wait * 1000))
    fetch: Callable[..., Awaitable[bool]] = fetcher._proc_fetch_request

    async def fetched(*args: Any) -> bool:
        brought = await fetch(*args)
        fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = flowing if brought else idle
        return brought

    fetcher._proc_fetch_request = fetched


class _FetchingThread(faust_kafka.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()
        wait = getattr(self.app, "fetch_wait", 0.0)
        if wait > 0:
            adapt_fetches(self._consumer, wait)


class _Consumer(Handover, faust_kafka.Consumer):
    """faust's Kafka consumer with its fetches adapted (above) and its records handed to the
    agents as streams/handover.py says."""

    def _new_consumer_thread(self) -> _FetchingThread:
        return _FetchingThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_kafka.Transport):
    Consumer = _Consumer


class FetchingApp(faust.App):
    """A faust app whose consumer's fetches, while records flow, wait up to ``fetch_wait``
    seconds for :data:`FETCH_MIN_BYTES` (0: faust's own fetches, answered at the first record),
    and whose consumer hands records to the agents as streams/handover.py says."""

    def __init__(self, *args: Any, fetch_wait: float = 0.0, **kwargs: Any) -> None:
        self.fetch_wait = fetch_wait  # (before faust's start-up, which may build the transport)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
