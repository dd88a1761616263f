"""Who is looking at the console: the SSO proxy's user, or the API token of the session.

Behind the organisation's SSO proxy, ``SEVFLOW_UI_TRUSTED_USER_HEADER`` names the person acting,
with ``SEVFLOW_UI_PROXY_SCOPES``, but only on a request whose peer address is in
``SEVFLOW_UI_TRUSTED_PROXIES``: from any other address the header is ignored (anyone can send a
header; only the proxy's address says the proxy sent it). Otherwise the API token the session
names (by its HMAC, never the token) is identified by the receiver's
:class:`receiver.access.Credentials` on every request, so its scopes
decide and a revoked token stops at once. Shared tokens are not people: behind the proxy, the
person's name is the actor of what they do.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

from models.access import Scope
from receiver.access import Credentials, Principal

__all__ = ["ProxyTrust", "identify", "token_user"]

#: A proxy's user name lands in the audit log and the timeline: a user name or an e-mail address.
_PROXY_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


@dataclass(frozen=True)
class ProxyTrust:
    """The SSO proxy: its user header, its addresses and the scopes of the users it names."""

    header: str
    networks: Sequence[IPv4Network | IPv6Network]
    scopes: frozenset[Scope]

    def user(self, peer: str | None, value: str | None) -> str | None:
        """The user the header names, when the peer is a trusted proxy and the name is plain."""
        if peer is None or value is None:
            return None
        try:
            address = ip_address(peer)
        except ValueError:
            return None
        if not any(address in network for network in self.networks):
            return None
        value = value.strip()
        return value if _PROXY_USER.fullmatch(value) else None


def identify(
    credentials: Credentials,
    holder: str,
    seal: Callable[[bytes], str],
    proxy: ProxyTrust | None,
    peer: str | None,
    header_value: str | None,
) -> Principal | None:
    """The principal of a console request: the proxy's user, else the one whose API token the
    session's ``holder`` names (``seal``: how the session sealed it; None: nobody signed in). A
    token without ``read`` is not a console user (e.g. a webhook token)."""
    if proxy is not None:
        user = proxy.user(peer, header_value)
        if user is not None:
            return Principal(user, proxy.scopes)
    principal = credentials.identify_holder(holder, seal)
    if principal is None or Scope.READ not in principal.scopes:
        return None
    return principal


def token_user(credentials: Credentials, token: str) -> Principal | None:
    """The console user of the API token ``token`` entered at sign-in (None: no such token, or
    one without ``read``)."""
    if not token:
        return None
    principal = credentials.identify(f"Bearer {token}")
    if principal is None or Scope.READ not in principal.scopes:
        return None
    return principal
