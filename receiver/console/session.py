"""The console's session cookie and its CSRF tokens.

A session names who signed in without carrying their credential: ``holder`` is the HMAC-SHA256,
under the console's key, of the API token the operator entered (empty before sign-in, and behind
the SSO proxy). With a random nonce and an expiry it is signed under the same key, so that nothing
in it can be changed or forged. The cookie carried the token itself (base64) before: anything that
saw the cookie (a proxy's log, a browser's developer tools, a HAR file sent to support) held a
bearer token for the whole API. On every request the holder is matched against the configured
tokens (:meth:`receiver.access.Credentials.identify_holder`), so a revoked or rotated token stops
working at once, and its scopes decide.

The cookie is ``HttpOnly`` (no script reads it), ``Secure`` (Chromium and Firefox accept it on
http://localhost and 127.0.0.1 too) and ``SameSite=Lax``: a link followed from Slack or PagerDuty
opens the console signed in, while another site's form cannot post with it.

The CSRF token of a session is ``HMAC(key, "csrf" | nonce)``: every form carries it, and every
POST is refused (403 ``csrf``) unless it matches the session it arrives with. Signing in starts a
new nonce (so a token planted before sign-in is worthless afterwards); signing out records the
nonce as ended in the store (store/console_sessions.py), so a copy of the cookie signs nobody in
afterwards, and clears the cookie.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["COOKIE_NAME", "Session", "SessionSigner"]

COOKIE_NAME = "sevflow_console"
_VERSION = "v2"  # (v1 carried the token itself: such a cookie is refused, its holder signs in again)


@dataclass(frozen=True)
class Session:
    """``holder``: the signed-in API token's HMAC (:meth:`SessionSigner.holder`; '' for none);
    ``nonce``: the session's own id and CSRF seed."""

    holder: str
    nonce: str
    expires_at: int  # seconds since the epoch


class SessionSigner:
    """Issues and verifies session cookies and CSRF tokens under one key."""

    def __init__(self, key: bytes, lifetime: timedelta) -> None:
        if len(key) < 16:
            raise ValueError("the console's session key needs at least 16 bytes")
        self._key = key
        self._lifetime = lifetime

    def __repr__(self) -> str:
        return "SessionSigner(key=***)"

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "|".join(parts).encode(), hashlib.sha256).hexdigest()

    def holder(self, token: bytes) -> str:
        """What a session keeps of the API token ``token``: its HMAC under the console's key."""
        return hmac.new(self._key, b"holder|" + token, hashlib.sha256).hexdigest()

    def new(self, holder: str, now: datetime) -> Session:
        expires = int((now + self._lifetime).timestamp())
        return Session(holder=holder, nonce=secrets.token_hex(16), expires_at=expires)

    def encode(self, session: Session) -> str:
        body = f"{_VERSION}.{session.holder}.{session.nonce}.{session.expires_at}"
        return f"{body}.{self._mac('session', body)}"

    def decode(self, cookie: str | None, now: datetime) -> Session | None:
        """The session the cookie carries; None when absent, altered, malformed or expired (a
        cookie of other than ASCII is altered: ``compare_digest`` raised TypeError on it, a 500
        on every page, the sign-in page too, until the browser dropped the cookie)."""
        if not cookie or not cookie.isascii():
            return None
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        version, _, rest = body.partition(".")
        holder, _, rest = rest.partition(".")
        nonce, _, expires = rest.partition(".")
        if version != _VERSION or not expires.isascii() or not expires.isdigit():
            return None
        if int(expires) <= now.timestamp():
            return None
        return Session(holder=holder, nonce=nonce, expires_at=int(expires))

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: Session | None, given: str | None) -> bool:
        if session is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf(session).encode())
