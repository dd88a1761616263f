"""What can go wrong when a sink talks to a vendor, as data.

::

    DeliveryError(retryable, reason, retry_after, throttled)
      retryable=True   429, 5xx, timeouts, transport errors, an open circuit breaker
      retryable=False  any other 4xx, a request the vendor will never accept
      throttled=True   429 (Statuspage: 420): the vendor asks the whole sink to slow down, not
                       just this call; its ``Retry-After`` then holds every call of the sink

The retry policy (:mod:`sinks.retry`) reads only these fields; senders never sleep or loop. A
``reason`` is safe to log and to put on the dead-letter topic: it never contains a credential.
"""

from dataclasses import dataclass

__all__ = ["DeliveryError", "SinkStopped", "classify_status"]


@dataclass(eq=False)  # not frozen: raising sets __traceback__ (contextlib's __aexit__ does)
class DeliveryError(Exception):
    """A vendor call failed; ``retryable`` says whether the same call may succeed later."""

    retryable: bool
    reason: str
    retry_after: float | None = None
    throttled: bool = False

    def __str__(self) -> str:
        kind = "retryable" if self.retryable else "permanent"
        return f"{kind}: {self.reason}"


class SinkStopped(Exception):
    """A sink refuses to go on (too many consecutive dead letters: likely a broken deploy)."""


def classify_status(status: int, what: str, retry_after: float | None = None) -> DeliveryError:
    """The error for an HTTP status: 429 and 5xx are retryable, other statuses are permanent.

    Statuspage also answers 420 when rate limited (developer.statuspage.io, "Rate limiting").
    """
    throttled = status in (420, 429)
    retryable = throttled or status >= 500
    return DeliveryError(
        retryable, f"{what}: HTTP {status}", retry_after if retryable else None, throttled
    )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the date form is not used by these vendors), else None."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds)
