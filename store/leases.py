"""Leases: at most one holder at a time for a singleton loop (the outbox relay, timers).

A lease is a row (name, holder, token, expires_at). Acquiring or renewing is one conditional
UPDATE, so two workers racing for it cannot both win; ``token`` grows each time the lease changes
hands, which fences a holder that paused past its expiry. Time is passed in.
"""

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from store.lease_terms import next_token, renewal_due
from store.schema import leases

__all__ = ["Lease"]


class Lease:
    """One named lease held by ``holder`` for ``ttl`` at a time."""

    def __init__(self, engine: AsyncEngine, name: str, holder: str, ttl: timedelta) -> None:
        self._engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.token: int | None = None
        self._expires_at: datetime | None = None

    async def acquire(self, now: datetime) -> bool:
        """Take or renew the lease when due (:func:`store.lease_terms.renewal_due`); True while
        this holder has it. Sets :attr:`token`."""
        if not renewal_due(self.token, self._expires_at, self.ttl, now):
            return True
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(leases)
                .values(name=self.name, holder="", token=0, expires_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            current = (
                await conn.execute(
                    select(leases.c.holder, leases.c.token).where(leases.c.name == self.name)
                )
            ).one()
            token = next_token(self.holder, current.holder, current.token)
            result = await conn.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    or_(
                        leases.c.holder == self.holder,
                        leases.c.holder == "",
                        leases.c.expires_at < now,
                    ),
                )
                .values(holder=self.holder, token=token, expires_at=now + self.ttl)
            )
        if result.rowcount == 1:
            self.token = token
            self._expires_at = now + self.ttl
            return True
        self.token = None
        self._expires_at = None
        return False

    async def release(self) -> None:
        """Give the lease up (on clean shutdown) so another worker takes over at once."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(leases)
                .where(leases.c.name == self.name, leases.c.holder == self.holder)
                .values(holder="")
            )
        self.token = None
        self._expires_at = None
