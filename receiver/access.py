"""Who is calling and what they may do: credentials → a :class:`Principal`, and the one table of
the scope each route needs.

Every route the receiver serves must be in :data:`ROUTE_ACCESS`: :func:`protect` refuses to build
a route that is not (default deny), so a new route cannot be served without a decision about who
may call it. A route needs a :class:`models.access.Scope`, or is ``public`` (``/health``, the
OpenAPI document) or ``signed`` (vendor callbacks verified by their own signature).

Answers: no or an unknown credential → 401 (as before; never saying which part was wrong); a
known credential without the scope → 403 ``{"error": "forbidden", "scope": "<needed>"}``, naming
the scope needed and never the token. The principal is put on ``request.state.principal``: its
name is the actor of what the request does (the audit log, the incident's timeline).
"""

import base64
import binascii
import hmac
import logging
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.access import ApiToken, Scope, TokenFormatError, parse_token_lines
from models.text_files import TextFileError, read_text
from receiver.errors import error_response

__all__ = [
    "ROUTE_ACCESS",
    "Access",
    "Credentials",
    "Principal",
    "RouteWithoutAccess",
    "TokenFileError",
    "authorize",
    "load_token_file",
    "principal_of",
    "protect",
    "protect_all",
]

log = logging.getLogger(__name__)

Access = Scope | Literal["public", "signed"]
Handler = Callable[[Request], Awaitable[Response]]

#: (method, path) → what the route needs. Every route of the receiver appears here; a route that
#: does not cannot be built (:func:`protect`). HEAD is answered as GET.
ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/webhooks/alertmanager"): Scope.WEBHOOK,
    ("GET", "/health"): "public",
    ("GET", "/ready"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/api/openapi.yaml"): "public",
    ("GET", "/api/incidents"): Scope.READ,
    ("GET", "/api/incidents/{incident_id}"): Scope.READ,
    ("POST", "/api/incidents/{incident_id}/ack"): Scope.WRITE,
    ("POST", "/api/incidents/{incident_id}/notes"): Scope.WRITE,
    ("POST", "/api/incidents/{incident_id}/resolve"): Scope.WRITE,
    ("POST", "/api/incidents/{incident_id}/escalate"): Scope.WRITE,
    ("POST", "/api/incidents/{incident_id}/statuspage/publish"): Scope.ADMIN,
    ("GET", "/api/maintenance"): Scope.ADMIN,
    ("POST", "/api/maintenance"): Scope.ADMIN,
    ("POST", "/api/maintenance/{window_id}/end"): Scope.ADMIN,
    ("GET", "/api/dlq"): Scope.ADMIN,
    ("POST", "/api/dlq/replay"): Scope.ADMIN,
    ("GET", "/api/quarantine"): Scope.ADMIN,
    ("POST", "/api/quarantine/replay"): Scope.ADMIN,
    ("POST", "/callbacks/slack/interactivity"): "signed",
    ("POST", "/callbacks/pagerduty"): "signed",
}


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to: ``name`` (a token's name, a basic-auth user, ``anonymous``
    on an unauthenticated test webhook) and what it may do."""

    name: str
    scopes: frozenset[Scope]


class RouteWithoutAccess(ValueError):
    """A route that is not in :data:`ROUTE_ACCESS`: it would be served to anyone."""


class TokenFileError(ValueError):
    """The tokens file cannot be used (unreadable, readable by others, malformed)."""


def _any_equal(given: bytes, candidates: Sequence[tuple[bytes, Principal]]) -> Principal | None:
    # Compare with every candidate so the timing tells neither how many there are nor which matched.
    found: Principal | None = None
    for secret, principal in candidates:
        if hmac.compare_digest(given, secret):
            found = principal
    return found


class Credentials:
    """The bearer tokens (scoped API tokens and the webhook tokens) and basic pairs accepted.

    Webhook tokens and basic pairs (``SEVFLOW_WEBHOOK_TOKENS`` / ``_BASIC_AUTH``) carry the
    ``webhook`` scope only. The same secret configured twice is refused: which name and scopes
    would it carry? No ``repr`` shows a secret."""

    def __init__(
        self,
        tokens: Sequence[ApiToken] = (),
        *,
        webhook_tokens: Sequence[SecretStr] = (),
        webhook_basic: Sequence[SecretStr] = (),
        allow_unauthenticated: bool = False,
    ) -> None:
        webhook = frozenset({Scope.WEBHOOK})
        bearer: list[tuple[bytes, Principal]] = []
        names: dict[bytes, str] = {}
        entries = [(t.secret, Principal(t.name, t.scopes)) for t in tokens] + [
            (s, Principal("webhook", webhook)) for s in webhook_tokens
        ]
        for secret, principal in entries:
            value = secret.get_secret_value().strip().encode()
            if not value:  # an empty token would match a header carrying none
                continue
            if value in names:
                raise ValueError(
                    f"the same token secret is configured twice ({names[value]} and "
                    f"{principal.name}): give each token its own secret"
                )
            names[value] = principal.name
            bearer.append((value, principal))
        basic: list[tuple[bytes, Principal]] = []
        for pair in webhook_basic:
            value = pair.get_secret_value().encode()
            user = value.partition(b":")[0].decode(errors="replace")
            if value.strip():
                basic.append((value, Principal(user or "basic", webhook)))
        self._bearer = bearer
        self._basic = basic
        has_webhook = any(Scope.WEBHOOK in p.scopes for _, p in bearer) or bool(basic)
        self._anonymous = (
            Principal("anonymous", webhook) if allow_unauthenticated and not has_webhook else None
        )

    def __repr__(self) -> str:
        return f"Credentials(bearer={len(self._bearer)}, basic={len(self._basic)})"

    def identify(self, authorization: str | None) -> Principal | None:
        """The principal whose credential the header carries, or None (401)."""
        found = self._match(authorization) if authorization else None
        return found or self._anonymous

    def identify_holder(self, holder: str, seal: Callable[[bytes], str]) -> Principal | None:
        """The principal of the bearer token that ``seal`` turns into ``holder`` (None for none):
        the console's session keeps that HMAC, never the token (receiver/console/session.py)."""
        if not holder:
            return None
        sealed = [(seal(secret).encode(), principal) for secret, principal in self._bearer]
        return _any_equal(holder.encode(), sealed)

    def _match(self, authorization: str) -> Principal | None:
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        try:
            # Starlette decodes header bytes as latin-1; encoding back recovers the bytes sent,
            # which for a non-ASCII secret are its UTF-8, like the configured ones.
            given = credentials.strip().encode("latin-1")
        except UnicodeEncodeError:
            return None
        if scheme == "bearer" and self._bearer:
            return _any_equal(given, self._bearer)
        if scheme == "basic" and self._basic:
            try:
                decoded = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                return None
            return _any_equal(decoded, self._basic)
        return None


def load_token_file(path: Path) -> list[ApiToken]:
    """The tokens of ``path``; :class:`TokenFileError` when group or others may read or write it
    (the error names the mode and the fix, never a secret), or it is unreadable or malformed."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise TokenFileError(
            f"SEVFLOW_API_TOKENS_FILE {path}: cannot be read ({exc.strerror})"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(
            f"SEVFLOW_API_TOKENS_FILE {path} has mode {stat.S_IMODE(mode):04o}: group or "
            f"others may use it; run chmod 600 {path} (Kubernetes: defaultMode 0400)"
        )
    try:
        text = read_text(path)
    except TextFileError as exc:
        raise TokenFileError(f"SEVFLOW_API_TOKENS_FILE {exc}") from None
    try:
        return parse_token_lines(text, f"SEVFLOW_API_TOKENS_FILE {path}")
    except TokenFormatError as exc:
        raise TokenFileError(str(exc)) from None


def principal_of(request: Request) -> Principal | None:
    """The principal :func:`protect` found for this request (None on an unprotected route)."""
    return cast(Principal | None, getattr(request.state, "principal", None))


def _unauthorized() -> Response:
    return error_response(
        401,
        "unauthorized",
        "missing or invalid credentials",
        headers={"WWW-Authenticate": 'Bearer realm="sevflow", Basic realm="sevflow"'},
    )


def authorize(request: Request, access: Access, credentials: Credentials) -> Response | None:
    """None when ``request`` may have ``access`` (its principal then on ``request.state``), else
    the 401 or 403 to answer."""
    if access in ("public", "signed"):
        return None
    principal = credentials.identify(request.headers.get("authorization"))
    if principal is None:
        return _unauthorized()
    if access not in principal.scopes:
        return error_response(
            403,
            "forbidden",
            f"this request needs the {access} scope",
            scope=str(access),
        )
    request.state.principal = principal
    return None


def _guard(endpoint: Handler, needed: dict[str, Access], credentials: Credentials) -> Handler:
    async def guarded(request: Request) -> Response:
        access = needed[request.method if request.method != "HEAD" else "GET"]
        refused = authorize(request, access, credentials)
        return refused if refused is not None else await endpoint(request)

    return guarded


def protect(path: str, methods: Iterable[str], endpoint: Handler, credentials: Credentials) -> Handler:
    """``endpoint`` behind the scope check :data:`ROUTE_ACCESS` gives each of ``methods`` on
    ``path``; raises :class:`RouteWithoutAccess` when one is missing."""
    needed: dict[str, Access] = {}
    for method in methods:
        if method == "HEAD":
            continue
        access = ROUTE_ACCESS.get((method, path))
        if access is None:
            raise RouteWithoutAccess(
                f"{method} {path} is not in receiver.access.ROUTE_ACCESS: say which scope it needs"
            )
        needed[method] = access
    return _guard(endpoint, needed, credentials)


def protect_all(routes: Iterable[Route], credentials: Credentials) -> list[Route]:
    """Each route behind its scope check (for serving routes without :func:`receiver.app.create_app`,
    as tests of one module do)."""
    return [
        Route(
            r.path,
            protect(r.path, r.methods or {"GET"}, cast(Handler, r.endpoint), credentials),
            methods=sorted(r.methods or {"GET"}),
            name=r.name,
        )
        for r in routes
    ]
