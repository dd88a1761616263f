"""The rules of a lease, shared by its two holders: the worker's timers, through SQLAlchemy
(store/leases.py), and the outbox relay's process, through the driver (store/driver_outbox.py).
No imports, so the relay's process stays small."""

from datetime import datetime, timedelta

__all__ = ["next_token", "renewal_due"]


def renewal_due(token: int | None, expires_at: datetime | None, ttl: timedelta, now: datetime) -> bool:
    """Whether the holder must write the lease at ``now``: it does not hold it, or it holds it for
    less than half its ttl still. A lease held longer is not renewed: nobody can take it before it
    expires, and the relay asks for every batch it publishes."""
    return token is None or expires_at is None or now >= expires_at - ttl / 2


def next_token(holder: str, current_holder: str, current_token: int) -> int:
    """The token ``holder`` takes the lease with: the current one when it is already the holder,
    the next when the lease changes hands (which fences a holder that paused past its expiry)."""
    return current_token if current_holder == holder else current_token + 1
