"""The one retry policy of every sink: exponential backoff with full jitter, ``Retry-After``
honoured, bounded by a deadline, gated by the sink's circuit breaker; and the retry of the sinks'
own store (:func:`retry_store`), which waits for the database instead of failing the sink.

:func:`backoff` is pure (attempt, error, random number → delay). :func:`call_with_retry` runs an
async call until it succeeds, fails permanently, or the deadline would pass; it raises the last
:class:`DeliveryError` so the caller can dead-letter the event with its reason.

A call's own failures hold only that call (its incident): the sink's worker delivers the other
incidents meanwhile. What holds the whole sink is the vendor's word or the evidence that it is
down: a throttled answer's ``Retry-After`` and the circuit breaker, which opens on failures of
many incidents (:mod:`sinks.breaker`).
"""

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from sinks.breaker import CircuitBreaker
from sinks.clock import Clock
from sinks.errors import DeliveryError

__all__ = ["TRANSIENT_STORE_ERRORS", "RetryPolicy", "backoff", "call_with_retry", "retry_store"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Store errors that pass: a connection cut (a failover, a restarted pooler, a terminated backend),
#: a database that does not answer yet, SQLite's file locked by another process, a pool exhausted
#: for a while. Other store errors (a missing table, a violated constraint) are bugs, and stop the
#: sink as before.
TRANSIENT_STORE_ERRORS = (OperationalError, InterfaceError, PoolTimeout, OSError)
#: One generator for every call's jitter: seeding a new ``random.Random`` from the OS costs about
#: 0.1 ms, and a sink makes a call per event.
_JITTER = random.Random()  # noqa: S311 (jitter, not cryptography)


@dataclass(frozen=True)
class RetryPolicy:
    initial: float = 1.0
    maximum: float = 60.0
    deadline: float = 3600.0


def backoff(policy: RetryPolicy, attempt: int, error: DeliveryError, jitter: float) -> float:
    """Delay before attempt ``attempt + 1`` (``attempt`` ≥ 1 failed so far); ``jitter`` ∈ [0, 1).

    Full jitter (a random point of the exponential window) spreads a thundering herd; a vendor's
    ``Retry-After`` is a floor, since calling earlier is known to fail.
    """
    window = min(policy.maximum, policy.initial * 2.0 ** (attempt - 1))
    delay = window * (0.5 + jitter / 2)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    breaker: CircuitBreaker,
    what: str,
    rng: random.Random | None = None,
    key: str | None = None,
) -> T:
    """Run ``call`` until success; raise the last :class:`DeliveryError` when it is permanent or
    the deadline would pass before the next attempt. ``key`` (the incident) is what the breaker
    counts a failure against."""
    rng = rng or _JITTER
    started = clock.monotonic()
    attempt = 0
    while True:
        while (wait := breaker.acquire(clock.monotonic())) > 0:
            if clock.monotonic() + wait - started > policy.deadline:
                raise DeliveryError(True, f"{what}: circuit open past the retry deadline")
            await clock.sleep(wait)
        attempt += 1
        try:
            result = await call()
        except DeliveryError as error:
            if not error.retryable:
                breaker.record_success()  # the API answered: it is up
                raise
            breaker.record_failure(clock.monotonic(), key)
            if error.throttled and error.retry_after is not None:
                breaker.throttle(clock.monotonic(), error.retry_after)
            delay = backoff(policy, attempt, error, rng.random())
            if clock.monotonic() + delay - started > policy.deadline:
                raise DeliveryError(
                    True, f"{error.reason} (gave up after {attempt} attempts)", error.retry_after
                ) from None
            log.warning("%s failed (%s); retry %d in %.1fs", what, error.reason, attempt, delay)
            await clock.sleep(delay)
        else:
            breaker.record_success()
            return result


async def retry_store(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    what: str,
    initial: float = 0.2,
    maximum: float = 30.0,
) -> T:
    """Run ``call`` again, backing off, until the store lets it finish (the worker does the same).

    The sinks read the delivery log before a vendor call and write it after: a store error fails
    the step that met it, and running the whole step again is answered by the log (done: no call;
    pending: reconciled) or repeats an idempotent call, as a redelivery after a crash would. Let
    through, the error stopped the sink's consumer and the sinks process (``sevflow run`` with
    it), and ended the batch's other incidents half-way while their deliveries went on.
    """
    delay = initial
    while True:
        try:
            return await call()
        except TRANSIENT_STORE_ERRORS as exc:
            log.warning("%s: store error (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            await clock.sleep(delay)
            delay = min(delay * 2, maximum)
