"""Webhook credentials: bearer tokens and/or HTTP basic pairs, compared in constant time.

These are the two credentials Alertmanager's ``http_config`` can send (``authorization`` and
``basic_auth``). Several of each may be valid at once so credentials can be rotated without
downtime. They carry the ``webhook`` scope only (receiver/access.py): the credential stored in
Alertmanager's configuration can post alerts, and neither read nor change incidents. A refusal
never says which part was wrong, and the configured secrets never leave this object.
"""

from collections.abc import Sequence

from pydantic import SecretStr

from models.access import ApiToken
from receiver.access import Credentials

__all__ = ["WebhookAuth"]


class WebhookAuth(Credentials):
    """:class:`receiver.access.Credentials` of the webhook alone (plus, optionally, API tokens)."""

    def __init__(
        self,
        tokens: Sequence[SecretStr] = (),
        basic: Sequence[SecretStr] = (),
        *,
        allow_unauthenticated: bool = False,
        api_tokens: Sequence[ApiToken] = (),
    ) -> None:
        """``basic`` entries are ``user:password``; with no webhook credentials at all and
        ``allow_unauthenticated`` every webhook request passes (closed test networks only).

        An empty (or blank) entry is no credential: kept, it would match a header that carries
        none (``Bearer`` alone), so an empty token would open the route to anyone."""
        super().__init__(
            api_tokens,
            webhook_tokens=tokens,
            webhook_basic=basic,
            allow_unauthenticated=allow_unauthenticated,
        )

    def allows(self, authorization: str | None) -> bool:
        """True when the header carries a valid credential (or none is needed)."""
        return self.identify(authorization) is not None
