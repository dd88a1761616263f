"""The in-doubt ledger: alerts of refused payloads that Kafka may still (or did) acknowledge.

Why it exists. aiokafka's idempotent producer never expires a batch it has started sending
(``SendProduceReqHandler._can_retry``: with idempotence "we never expire batches, but retry until we
succeed"), and it has no ``delivery.timeout.ms``. So when Kafka is down or slow and the receiver
gives up waiting (answering 503 so Alertmanager retries), the records stay queued and are written
the moment the broker is back. Alertmanager's retry of the same notification would then write them
a second time. The same happens when the sender hangs up before our answer (its own deadline), and
when only part of a payload was acknowledged before another part failed.

What it does. When a payload is *not* answered 2xx, each of its records that was queued is noted
here by identity (its content without ``received_at``) with its delivery future:

* acknowledged already, or later → remembered as *delivered* for ``window`` seconds;
* still pending → remembered as *pending*; its future decides later (ack → delivered; failure →
  forgotten, because a failed future means Kafka did not take it);
* failed → not noted (the retry must write it).

Before a payload's records are produced the publisher looks each one up: *delivered* → skip it (it is
in the topic), *pending* → wait on the existing future instead of writing again. Payloads answered
2xx leave nothing here, so in normal operation the ledger is empty and costs nothing.

Limits, stated plainly: the ledger is per receiver process (a retry that lands on another replica is
not deduplicated: downstream idempotency on fingerprint and state covers that), and a 2xx lost on the
network is Alertmanager's ordinary at-least-once.
"""

import asyncio
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from models.alert import AlertRecord

__all__ = ["InDoubtLedger", "identity"]

Clock = Callable[[], float]


def identity(record: AlertRecord) -> bytes:
    """What makes two records the same write: everything but the time the receiver saw it."""
    content = record.model_dump_json(exclude={"received_at"}).encode()
    return hashlib.blake2b(content, digest_size=16).digest()


@dataclass
class _Entry:
    future: "asyncio.Future[object]"
    expires: float | None  # None while pending


class InDoubtLedger:
    """Identities of records from refused payloads, with their delivery outcome."""

    def __init__(self, clock: Clock, window: float, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._window = window
        self._max_entries = max_entries
        self._entries: dict[bytes, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        """Too much in doubt: take no new records until Kafka resolves some (backpressure)."""
        return len(self._entries) >= self._max_entries

    def lookup(self, key: bytes) -> "asyncio.Future[object] | None":
        """The delivery future of an in-doubt record with this identity, if any."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires is not None and entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry.future

    def refuse(self, deliveries: Iterable[tuple[bytes, "asyncio.Future[object]"]]) -> None:
        """Note the queued records of a payload that is not answered 2xx."""
        self._prune()
        for key, future in deliveries:
            if key in self._entries:
                continue
            if future.done():
                if not future.cancelled() and future.exception() is None:
                    self._entries[key] = _Entry(future, self._clock() + self._window)
                continue
            self._entries[key] = _Entry(future, None)
            future.add_done_callback(functools.partial(self._settled, key))

    def _settled(self, key: bytes, future: "asyncio.Future[object]") -> None:
        entry = self._entries.get(key)
        if entry is None or entry.future is not future:
            return
        if future.cancelled() or future.exception() is not None:
            del self._entries[key]  # Kafka did not take it: the retry must write it
        else:
            entry.expires = self._clock() + self._window

    def _prune(self) -> None:
        now = self._clock()
        expired = [k for k, e in self._entries.items() if e.expires is not None and e.expires <= now]
        for key in expired:
            del self._entries[key]
