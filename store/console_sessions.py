"""Console sessions signed out: their nonces, until the session would have expired.

A console session lives in its signed cookie (receiver/console/session.py), so signing out could
only ask the browser to forget it: a copy of the cookie (a proxy's log, a HAR file sent to
support) kept working for the rest of its lifetime. Signing out now records the session's nonce
here, in the store every replica of the receiver shares, and a cookie whose nonce is recorded
signs nobody in. A row is kept only until the session's own expiry; each sign-out clears the
expired ones.
"""

from datetime import datetime

from sqlalchemy import Column, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import reader
from store.schema import UTCDateTime, metadata

__all__ = ["NONCE_MAX", "console_sessions_ended", "end_session", "session_ended"]

#: A session's nonce: 32 hexadecimal digits (``secrets.token_hex(16)``); room for longer.
NONCE_MAX = 64

console_sessions_ended = Table(
    "console_sessions_ended",
    metadata,
    Column("nonce", String(NONCE_MAX), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)


async def end_session(engine: AsyncEngine, nonce: str, expires_at: datetime, now: datetime) -> None:
    """Record the session ``nonce`` as signed out (again: nothing changes), and forget the
    sessions that have expired by ``now``."""
    async with engine.begin() as conn:
        await conn.execute(
            delete(console_sessions_ended).where(console_sessions_ended.c.expires_at <= now)
        )
        known = select(console_sessions_ended.c.nonce).where(console_sessions_ended.c.nonce == nonce)
        if (await conn.execute(known)).first() is None:
            await conn.execute(insert(console_sessions_ended).values(nonce=nonce, expires_at=expires_at))


async def session_ended(engine: AsyncEngine, nonce: str) -> bool:
    """True when the session ``nonce`` was signed out."""
    query = select(console_sessions_ended.c.nonce).where(console_sessions_ended.c.nonce == nonce)
    async with reader(engine).connect() as conn:
        return (await conn.execute(query)).first() is not None
