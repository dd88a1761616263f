"""Step: store one alert record.

A record that cannot be decoded is poison: it is logged with its reason and skipped (it can never
succeed). A database failure is transient: the step retries with capped backoff and never returns
before the alert is stored, so the consumer offset is not committed past an unstored alert.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from models.alert import AlertRecord
from store.alerts import AlertStore

__all__ = ["InvalidRecord", "decode_alert", "store_alert"]

log = logging.getLogger(__name__)


class InvalidRecord(Exception):
    """A record that no retry can make valid (poison)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_alert(raw: bytes | None) -> AlertRecord:
    """Parse an alerts-topic value, or raise :class:`InvalidRecord` with the reason."""
    if raw is None:
        raise InvalidRecord("empty record value")
    try:
        return AlertRecord.from_bytes(raw)
    except ValidationError as exc:
        raise InvalidRecord(f"not an alert record: {exc.error_count()} errors: {exc}") from None


async def store_alert(
    store: AlertStore,
    record: AlertRecord,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_delay: float = 30.0,
) -> None:
    """Upsert ``record``, retrying database errors with exponential backoff until it succeeds."""
    delay = 0.2
    while True:
        try:
            await store.upsert(record)
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "storing alert %s failed (%s); retrying in %.1fs",
                record.fingerprint,
                type(exc).__name__,
                delay,
            )
            await sleep(delay)
            delay = min(delay * 2, max_delay)
        else:
            return
