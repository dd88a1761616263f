"""The in-doubt ledger: alerts that Kafka may still write (or did write) without the sender knowing.

Why it exists. aiokafka's idempotent producer never expires a batch it has started sending
(``SendProduceReqHandler._can_retry``: with idempotence "we never expire batches, but retry until we
succeed"), and it has no ``delivery.timeout.ms``. So when Kafka is down or slow and the receiver
gives up waiting (answering 503 so Alertmanager retries), the records stay queued and are written
the moment the broker is back. Alertmanager's retry of the same notification would then write them
a second time. The same happens when the sender hangs up before our answer (its own deadline): its
retry may even arrive while the first attempt is still waiting for Kafka, and when only part of a
payload was acknowledged before another part failed.

What it holds. One entry per *stream* (fingerprint, receiver, group key: one alert as one
Alertmanager notification route sends it), for the newest record of that stream that is

* *in flight*: being sent by a publish that has not answered yet. Registered before it is sent, so a
  retry that arrives meanwhile waits on the same delivery instead of sending it again; forgotten when
  its payload is answered 2xx (nothing will retry it), so in normal operation the ledger holds only
  what is being sent right now, and lookups cost a dictionary probe;
* *in doubt*: its payload was not answered 2xx (refused, or the sender hung up). Acknowledged
  already, or later → remembered as *delivered* for ``window`` seconds; still pending → its future
  decides later (ack → delivered; failure → forgotten, because a failed future means Kafka did not
  take it); failed → not kept (the retry must write it).

Before a record is sent the publisher looks it up: the same content (identity: everything but
``received_at``) in flight or delivered → wait on that delivery instead of writing it again. A record
of the stream with *different* content replaces the entry: the stream moved on (firing → resolved →
firing again with the same ``startsAt`` would otherwise match the first firing and be skipped,
leaving "resolved" last in the topic while the alert fires). A stale attempt that ends after the
stream moved on does not put its record back, and a record replaced while it was still being
written (HA Alertmanagers, a slow Kafka) is remembered by content for ``SUPERSEDED_GRACE`` seconds
after its write ends: its sender's retry is answered by the newer record instead of writing the
old one after it.

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

__all__ = ["Delivery", "InDoubtLedger", "identity", "stream"]

MonotonicClock = Callable[[], float]
#: Seconds a record superseded while being written keeps deduplicating its retries after its
#: write ended (Alertmanager retries a failed notification within seconds to a few minutes).
SUPERSEDED_GRACE = 120.0
StreamKey = tuple[str, str, str]


def identity(record: AlertRecord) -> bytes:
    """What makes two records the same write: everything but the time the receiver saw it."""
    content = record.model_dump_json(exclude={"received_at"}).encode()
    return hashlib.blake2b(content, digest_size=16).digest()


def stream(record: AlertRecord) -> StreamKey:
    """The alert as one notification route sends it: its records supersede each other."""
    return (record.fingerprint, record.receiver, record.group_key)


@dataclass(eq=False, slots=True)
class Delivery:
    """One record's write, from just before it is sent until it is forgotten."""

    key: StreamKey
    record: AlertRecord
    future: "asyncio.Future[object] | None" = None
    """The producer's delivery future; None while the record is being queued."""
    waiter: "asyncio.Future[object] | None" = None
    """Made for a retry that arrives while the record is being queued; follows ``future``."""
    in_doubt: bool = False
    expires: float | None = None
    """Set once acknowledged while in doubt."""
    content: bytes | None = None
    """:func:`identity` of ``record``, computed when a lookup first needs it."""

    def identity(self) -> bytes:
        if self.content is None:
            self.content = identity(self.record)
        return self.content

    def outcome(self) -> "asyncio.Future[object]":
        """What a retry of this record waits on: the delivery (or, while queueing, its follower)."""
        if self.future is not None:
            return self.future
        if self.waiter is None:
            self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter


class InDoubtLedger:
    """The newest record per stream that is in flight or in doubt, with its delivery."""

    def __init__(self, clock: MonotonicClock, window: float, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._window = window
        self._max_entries = max_entries
        self._entries: dict[StreamKey, Delivery] = {}
        self._in_doubt = 0
        #: Records replaced by newer content of their stream while still being written, by
        #: identity, with when they stop counting (None: not written yet). A retry of one is
        #: stale: its stream moved on, and writing it again would put it after the newer record.
        self._superseded: dict[bytes, tuple[Delivery, float | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def active(self) -> bool:
        """Whether a lookup can find anything (an entry, or a superseded record's marker)."""
        return bool(self._entries or self._superseded)

    @property
    def full(self) -> bool:
        """Too much in doubt: take no new records until Kafka resolves some (backpressure).
        Records in flight do not count: the publisher's concurrency already bounds them. Expired
        entries are dropped first: a payload refused as full sends nothing and so prunes nothing."""
        if self._in_doubt >= self._max_entries:
            self._prune()
        return self._in_doubt >= self._max_entries

    def lookup(self, record: AlertRecord) -> Delivery | None:
        """The delivery of the same content in flight or in doubt, if any: wait on its outcome.
        For a retry of a record superseded while it was being written: the newer record's."""
        entry = self._entries.get(stream(record))
        if entry is not None and entry.expires is not None and entry.expires <= self._clock():
            self._forget(entry)
            entry = None
        if entry is not None and entry.identity() == identity(record):
            return entry
        if not self._superseded:
            return None
        self._prune_superseded()
        if identity(record) not in self._superseded:
            return None
        if entry is not None:
            return entry  # answered by the newer record's write
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return Delivery(stream(record), record, done)

    def sending(self, record: AlertRecord) -> Delivery:
        """Register ``record`` as in flight just before it is sent (look it up first); it replaces
        its stream's entry, which held different (older) content."""
        entry = Delivery(stream(record), record)
        older = self._entries.get(entry.key)
        if older is not None:
            if older.future is None or not older.future.done():
                self._supersede(older)
            self._forget(older)
        self._entries[entry.key] = entry
        return entry

    def _supersede(self, older: Delivery) -> None:
        """Remember a record replaced while still being written (HA Alertmanagers sending the
        same alert's firing and resolved while Kafka is slow), for ``window`` seconds after its
        write ends: long enough for its sender's retries, not for a genuine re-fire much later."""
        key = older.identity()
        self._superseded[key] = (older, None)

        def ended(_: object) -> None:
            if key in self._superseded and self._superseded[key][0] is older:
                self._superseded[key] = (older, self._clock() + SUPERSEDED_GRACE)

        older.outcome().add_done_callback(ended)

    def queued(self, entry: Delivery, future: "asyncio.Future[object]") -> None:
        """The producer took the record: ``future`` settles when Kafka acknowledges (or refuses) it."""
        entry.future = future
        if entry.waiter is not None:
            future.add_done_callback(functools.partial(_copy_outcome, entry.waiter))

    def not_queued(self, entry: Delivery) -> None:
        """Sending raised: nothing was written. A retry that waited on it fails (and will resend)."""
        if entry.waiter is not None and not entry.waiter.done():
            entry.waiter.cancel()
        if self._entries.get(entry.key) is entry:
            self._forget(entry)

    def answered(self, entries: Iterable[Delivery]) -> None:
        """The records' payload was answered 2xx: nobody will retry them, forget them."""
        for entry in entries:
            if not entry.in_doubt and self._entries.get(entry.key) is entry:
                del self._entries[entry.key]

    def refuse(self, entries: Iterable[Delivery]) -> None:
        """The records' payload (which sent them, or waited on them) is not answered 2xx: keep
        each in doubt, unless its stream has moved on to newer content since."""
        self._prune()
        for entry in entries:
            if entry.in_doubt or self._entries.get(entry.key) is not entry:
                continue
            future = entry.outcome()
            entry.in_doubt = True
            self._in_doubt += 1
            if not future.done():
                future.add_done_callback(functools.partial(self._settled, entry))
            elif future.cancelled() or future.exception() is not None:
                self._forget(entry)
            else:
                entry.expires = self._clock() + self._window

    def unanswered(self, records: Iterable[AlertRecord]) -> None:
        """Acknowledged records whose 2xx never reached the sender: remember them as delivered,
        unless their stream already has an entry (this content, or newer content sent since)."""
        self._prune()
        acknowledged: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        expires = self._clock() + self._window
        for record in records:
            key = stream(record)
            if key not in self._entries:
                self._entries[key] = Delivery(key, record, acknowledged, None, True, expires)
                self._in_doubt += 1

    def _settled(self, entry: Delivery, future: "asyncio.Future[object]") -> None:
        if self._entries.get(entry.key) is not entry:
            return
        if future.cancelled() or future.exception() is not None:
            self._forget(entry)  # Kafka did not take it: the retry must write it
        else:
            entry.expires = self._clock() + self._window

    def _forget(self, entry: Delivery) -> None:
        del self._entries[entry.key]
        if entry.in_doubt:
            self._in_doubt -= 1

    def _prune_superseded(self) -> None:
        now = self._clock()
        ended = [k for k, (_, until) in self._superseded.items() if until is not None and until <= now]
        for key in ended:
            del self._superseded[key]

    def _prune(self) -> None:
        self._prune_superseded()
        now = self._clock()
        expired = [e for e in self._entries.values() if e.expires is not None and e.expires <= now]
        for entry in expired:
            self._forget(entry)


def _copy_outcome(waiter: "asyncio.Future[object]", future: "asyncio.Future[object]") -> None:
    if waiter.done():
        return
    if future.cancelled():
        waiter.cancel()
    elif (exc := future.exception()) is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(future.result())
