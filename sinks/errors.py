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

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from models.clock import utc_now

__all__ = ["RETRY_AFTER_MAX", "DeliveryError", "SinkStopped", "classify_status", "parse_retry_after"]


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


#: The longest pause a vendor's ``Retry-After`` imposes on a sink. PagerDuty, Slack and
#: Statuspage ask for seconds to a minute; a longer value (a misconfigured proxy, a hostile
#: answer, ``inf``) would otherwise hold every page of the sink for that long, or for ever.
RETRY_AFTER_MAX = 300.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds, at most :data:`RETRY_AFTER_MAX`; None when absent or unreadable.

    Both of RFC 9110's forms: delay-seconds (a decimal is read too) and an HTTP-date, which
    proxies in front of a vendor may send, counted from ``now`` (default: the wall clock). A
    negative delay or a date in the past is 0; ``nan`` or ``inf`` is unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until(text, now or utc_now())
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_MAX)


def _seconds_until(http_date: str, now: datetime) -> float | None:
    """Seconds from ``now`` to an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``), or None."""
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP-date is in GMT
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()
