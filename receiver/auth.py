"""Webhook authentication: bearer tokens and/or HTTP basic credentials, compared in constant time.

These are the two credentials Alertmanager's ``http_config`` can send (``authorization`` and
``basic_auth``). Several of each may be valid at once so credentials can be rotated without
downtime. A refusal never says which part was wrong, and the configured secrets never leave this
object (no ``repr`` shows them).
"""

import base64
import binascii
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

__all__ = ["WebhookAuth"]


def _any_equal(given: bytes, candidates: Sequence[bytes]) -> bool:
    # Compare with every candidate so the timing tells neither how many there are nor which matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(given, candidate)
    return matched


class WebhookAuth:
    """Checks an ``Authorization`` header against the configured bearer tokens and basic pairs."""

    def __init__(
        self,
        tokens: Sequence[SecretStr] = (),
        basic: Sequence[SecretStr] = (),
        *,
        allow_unauthenticated: bool = False,
    ) -> None:
        """``basic`` entries are ``user:password``; with no credentials at all and
        ``allow_unauthenticated`` every request passes (closed test networks only).

        An empty (or blank) entry is no credential: kept, it would match a header that carries
        none (``Bearer`` alone), so an empty token would open the route to anyone."""
        self._tokens = [t.get_secret_value().encode() for t in tokens if t.get_secret_value().strip()]
        self._basic = [b.get_secret_value().encode() for b in basic if b.get_secret_value().strip()]
        self._open = allow_unauthenticated and not self._tokens and not self._basic

    def __repr__(self) -> str:
        return f"WebhookAuth(tokens={len(self._tokens)}, basic={len(self._basic)}, open={self._open})"

    def allows(self, authorization: str | None) -> bool:
        """True when the header carries a valid credential (or no credentials are configured)."""
        if self._open:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        try:
            # Starlette decodes header bytes as latin-1; encoding back recovers the bytes sent,
            # which for a non-ASCII secret are its UTF-8, like the configured ones.
            given = credentials.strip().encode("latin-1")
        except UnicodeEncodeError:  # not from a header: no byte string it could have been
            return False
        if scheme == "bearer" and self._tokens:
            return _any_equal(given, self._tokens)
        if scheme == "basic" and self._basic:
            try:
                decoded = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                return False
            return _any_equal(decoded, self._basic)
        return False
