"""The address a request's connection came from, kept beside the one X-Forwarded-For names.

uvicorn's proxy headers replace the ASGI scope's ``client`` with the address a trusted forwarder
(``SEVFLOW_FORWARDED_ALLOW_IPS``, 127.0.0.1 by default) names in ``X-Forwarded-For``: right for
the logs and the rate limits, which want the person's address, but not for deciding whether the
SSO proxy sent a request (``SEVFLOW_UI_TRUSTED_PROXIES``). There, a caller on a forwarding address
(any process on the host, by default) named a trusted proxy's address in ``X-Forwarded-For`` and
signed in to the console as whatever user its header named. :class:`KeepPeer` runs before the
proxy headers are applied and keeps the connection's own address under :data:`PEER`.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["PEER", "KeepPeer", "connection_peer"]

#: The scope key of the connection's own ``(host, port)`` (ASGI lets servers add namespaced keys).
PEER = "sevflow.peer"

Scope = MutableMapping[str, Any]
App = Callable[..., Awaitable[None]]


class KeepPeer:
    """ASGI middleware: the scope's ``client`` as the connection gave it, kept under :data:`PEER`
    for what comes after a middleware that rewrites ``client``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER] = scope.get("client")
        await self.app(scope, receive, send)


def connection_peer(scope: Scope) -> str | None:
    """The host of the request's connection itself: the address :class:`KeepPeer` kept, else the
    scope's ``client`` (an app served without proxy headers, as the tests serve it in process)."""
    client = scope.get(PEER, scope.get("client"))
    return str(client[0]) if client else None
