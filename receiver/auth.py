"""Webhook authentication: bearer tokens compared in constant time.

Several tokens may be valid at once so a token can be rotated without downtime. A refusal never says
which part was wrong.
"""

import hmac
from collections.abc import Sequence

from pydantic import SecretStr

__all__ = ["BearerAuth"]


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` against the configured tokens."""

    def __init__(self, tokens: Sequence[SecretStr], *, allow_unauthenticated: bool = False) -> None:
        self._tokens = [t.get_secret_value().encode() for t in tokens]
        self._open = allow_unauthenticated and not self._tokens

    def allows(self, authorization: str | None) -> bool:
        """True when the header carries a valid token (or no credentials are configured)."""
        if self._open:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = credentials.strip().encode()
        # Compare with every token so timing does not tell how many tokens there are or which matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        return matched
