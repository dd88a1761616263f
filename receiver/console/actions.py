"""The console's actions go through the API's own routes, in process.

Acknowledge, resolve and escalate are the incident API's ``POST /api/incidents/{id}/…`` routes
(receiver/incident_api.py's look-up of the incident, then receiver/callbacks/api.py's command onto the
commands topic); maintenance windows and dead letters are the admin API's routes (their audit
record included). The console calls the very endpoint those routes serve, with the signed-in
principal as the one who acts and a JSON body as the API takes it, so an action from the console
has the API's checks, answers, idempotency and audit record: nothing is written twice here.

Which scope an action needs is :data:`receiver.access.ROUTE_ACCESS`'s entry for that API route.
"""

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Message, Scope

from models.access import Scope as TokenScope
from receiver.access import ROUTE_ACCESS, Principal

__all__ = ["ApiCall", "ApiRoutes", "Forbidden"]

Handler = Callable[[Request], Awaitable[Response]]


class Forbidden(Exception):
    """The principal lacks the scope the API route needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"this action needs the {scope} scope")
        self.scope = scope


@dataclass(frozen=True)
class ApiCall:
    """What the API answered: its status and JSON document."""

    status: int
    document: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        text = self.document.get("message") or self.document.get("status") or ""
        return str(text)


class ApiRoutes:
    """The API routes the receiver serves, callable by (method, path template)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)

    def has(self, method: str, path: str) -> bool:
        return self._find(method, path) is not None

    def _find(self, method: str, path: str) -> Route | None:
        for route in self._routes:
            if route.path == path and method in (route.methods or {"GET"}):
                return route
        return None

    @staticmethod
    def allowed(principal: Principal, method: str, path: str) -> bool:
        needed = ROUTE_ACCESS.get((method, path))
        return isinstance(needed, TokenScope) and needed in principal.scopes

    async def call(
        self,
        principal: Principal,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        query: str = "",
        idempotency_key: str | None = None,
        client: tuple[str, int] | None = None,
    ) -> ApiCall:
        """Call the endpoint of ``method path`` as ``principal``; :class:`Forbidden` without
        the scope ROUTE_ACCESS names, LookupError when the receiver does not serve the route."""
        route = self._permitted(principal, method, path)
        params = dict(path_params or {})
        headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
        if idempotency_key:
            headers.append((b"idempotency-key", idempotency_key.encode()))
        raw = json.dumps(dict(body)).encode() if body is not None else b""
        scope = _http_scope(principal, method, path.format(**params), params, query, headers, client)
        match, _ = route.matches(scope)
        if match is not Match.FULL:
            raise LookupError(f"{scope['path']} does not match {path}")
        response = await cast(Handler, route.endpoint)(Request(scope, _receive_once(raw)))
        return _answer(response)

    def _permitted(self, principal: Principal, method: str, path: str) -> Route:
        """The route of ``method path``, if ``principal`` holds the scope ROUTE_ACCESS names."""
        needed = ROUTE_ACCESS.get((method, path))
        if not isinstance(needed, TokenScope):
            raise LookupError(f"{method} {path} is not a scoped API route")
        if needed not in principal.scopes:
            raise Forbidden(needed.value)
        route = self._find(method, path)
        if route is None:
            raise LookupError(f"{method} {path} is not served")
        return route


def _http_scope(
    principal: Principal,
    method: str,
    concrete: str,
    params: dict[str, str],
    query: str,
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
) -> Scope:
    """The ASGI scope of a request to ``concrete`` (the path with its parameters filled in),
    the principal in its state as the API's authentication puts it there."""
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": concrete,
        "raw_path": concrete.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": client,
        "server": None,
        "path_params": params,
        "state": {"principal": principal},
    }


def _receive_once(raw: bytes) -> Callable[[], Awaitable[Message]]:
    """An ASGI ``receive`` that gives the body once, then a disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return receive


def _answer(response: Response) -> ApiCall:
    """The endpoint's answer as an :class:`ApiCall` (a JSON list under ``items``, no JSON: ``{}``)."""
    try:
        document = json.loads(bytes(response.body)) if response.body else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {"items": document}
    return ApiCall(response.status_code, document)
