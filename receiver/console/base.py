"""The console's foundation: its configuration, sessions, sign-in and the guard every page passes
(:meth:`ConsoleBase.viewing`: the session's CSRF token on a POST, a signed-in visitor, the page's
scope), and how pages and refusals are answered. receiver/console/app.py adds the pages.
"""

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from analytics.figures import ResponseTargets
from models.access import Scope
from models.clock import Clock
from models.web_links import web_url
from receiver.access import Credentials, Principal
from receiver.console.actions import ApiRoutes, Forbidden
from receiver.console.forms import read_form
from receiver.console.identity import ProxyTrust, identify, token_user
from receiver.console.links import LinkSettings
from receiver.console.refused import Refused
from receiver.console.session import COOKIE_NAME, Session, SessionSigner
from receiver.console.targets import format_duration, format_remaining
from receiver.errors import error_response
from receiver.peer import connection_peer
from receiver.ratelimit import RateLimiter, retry_after_header
from store.console_sessions import end_session, session_ended
from store.deliveries import DeliveryLog

__all__ = ["PREFIX", "ConsoleBase", "ConsoleConfig", "Handler", "Refused", "Visitor", "session_key"]

log = logging.getLogger("receiver.console.app")

PREFIX = "/ui"
_HERE = Path(__file__).resolve().parent

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs beyond the API routes: the store, who may sign in, the clock."""

    engine: AsyncEngine
    credentials: Credentials
    signer: SessionSigner
    clock: Clock
    #: The escalation policy's response targets (``SEVFLOW_ESCALATION_POLICY_FILE``, the
    #: playbook's without one; its teams' own): the incidents' response clocks and the analytics
    #: page judge by them, as the escalation engine does.
    targets: ResponseTargets = field(default_factory=ResponseTargets)
    proxy: ProxyTrust | None = None
    #: Sign-in attempts per client address (SEVFLOW_UI_LOGIN_PER_MINUTE, _BURST).
    login_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(10 / 60, 10))
    #: Where the vendors' web pages are: the incident page's links (receiver/console/links.py).
    links: LinkSettings = field(default_factory=LinkSettings)


@dataclass
class Visitor:
    """The request's session (new or as the cookie carried it) and who it signs in."""

    session: Session
    principal: Principal | None
    fresh: bool  # the session is new: set its cookie on the answer

    def can(self, scope: Scope) -> bool:
        return self.principal is not None and scope in self.principal.scopes


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every template: the console shows text from alerts and callers
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["remaining"] = format_remaining
    env.filters["duration"] = format_duration
    env.filters["web_url"] = web_url  # a link only for http(s): text from alerts stays text
    return env


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


class ConsoleBase:
    """Sessions, sign-in and the guard; :class:`receiver.console.app.Console` adds the pages."""

    def __init__(self, config: ConsoleConfig, api: ApiRoutes) -> None:
        self._config = config
        self._api = api
        self._templates = Jinja2Templates(env=_environment())
        self._log = DeliveryLog(config.engine)

    # --- sessions ------------------------------------------------------------------------------

    async def _visitor(self, request: Request) -> Visitor:
        config = self._config
        now = config.clock()
        session = config.signer.decode(request.cookies.get(COOKIE_NAME), now)
        if session is not None and session.holder and await self._ended(session):
            session = None  # signed out: a copy of the cookie signs nobody in
        fresh = session is None
        if session is None:
            session = config.signer.new("", now)
        header = request.headers.get(config.proxy.header) if config.proxy else None
        peer = connection_peer(request.scope)  # (not X-Forwarded-For's: see receiver.peer)
        principal = identify(
            config.credentials, session.holder, config.signer.holder, config.proxy, peer, header
        )
        return Visitor(session, principal, fresh)

    async def _ended(self, session: Session) -> bool:
        """Whether the session was signed out; a store that cannot tell signs nobody in (its
        pages could not be read either)."""
        try:
            return await session_ended(self._config.engine, session.nonce)
        except SQLAlchemyError as exc:
            log.warning("console cannot check its session in the store: %s", type(exc).__name__)
            return True

    def _answer(self, request: Request, visitor: Visitor, response: Response) -> Response:
        if visitor.fresh:
            self._set_cookie(response, visitor.session)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response

    def _set_cookie(self, response: Response, session: Session) -> None:
        max_age = max(0, session.expires_at - int(self._config.clock().timestamp()))
        response.set_cookie(
            COOKIE_NAME,
            self._config.signer.encode(session),
            max_age=max_age,
            path=PREFIX,
            secure=True,
            httponly=True,
            samesite="lax",
        )

    def _page(
        self, request: Request, visitor: Visitor, template: str, status: int = 200, **context: Any
    ) -> Response:
        context.update(
            prefix=PREFIX,
            user=visitor.principal.name if visitor.principal else None,
            can_write=visitor.can(Scope.WRITE),
            can_admin=visitor.can(Scope.ADMIN),
            csrf=self._config.signer.csrf(visitor.session),
            proxied=self._config.proxy is not None,
        )
        response = self._templates.TemplateResponse(request, template, context, status_code=status)
        return self._answer(request, visitor, response)

    def _refusal(self, request: Request, visitor: Visitor, refused: Refused) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return self._answer(
                request, visitor, error_response(refused.status, refused.code, refused.message)
            )
        return self._page(
            request,
            visitor,
            "error.html",
            refused.status,
            code=refused.code,
            message=refused.message,
        )

    def viewing(self, scope: Scope, handler: Callable[..., Awaitable[Response]]) -> Handler:
        """``handler(request, visitor)`` for a signed-in visitor with ``scope``; a POST needs the
        session's CSRF token first. Not signed in: to the sign-in page (GET) or 401."""

        async def guarded(request: Request) -> Response:
            visitor = await self._visitor(request)
            try:
                if request.method == "POST":
                    form = await read_form(request)
                    given = form.get("csrf")
                    if visitor.fresh or not self._config.signer.csrf_ok(
                        visitor.session, given if isinstance(given, str) else None
                    ):
                        raise Refused(
                            403, "csrf", "the form's CSRF token is missing or invalid: reload the page"
                        )
                if visitor.principal is None:
                    if request.method == "GET":
                        target = request.url.path + (
                            f"?{request.url.query}" if request.url.query else ""
                        )
                        response = RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", 303)
                        return self._answer(request, visitor, response)
                    raise Refused(401, "unauthorized", "sign in first")
                if scope not in visitor.principal.scopes:
                    raise Refused(403, "forbidden", f"this needs the {scope.value} scope")
                return await handler(request, visitor)
            except Forbidden as exc:
                return self._refusal(
                    request, visitor, Refused(403, "forbidden", f"this needs the {exc.scope} scope")
                )
            except Refused as refused:
                return self._refusal(request, visitor, refused)
            except SQLAlchemyError as exc:
                log.warning("console cannot read the store: %s", type(exc).__name__)
                return self._refusal(
                    request,
                    visitor,
                    Refused(503, "store_unavailable", "the incident store cannot be read; retry"),
                )

        return guarded

    # --- sign in and out -------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        return self._page(
            request, visitor, "login.html", next=_local(request.query_params.get("next")), failed=False
        )

    async def login(self, request: Request) -> Response:
        visitor = await self._visitor(request)
        peer = request.client.host if request.client else "-"
        wait = self._config.login_limiter.acquire(peer, self._config.clock().timestamp())
        if wait > 0:
            log.info("console sign-in rate-limited for %s", peer)
            seconds = retry_after_header(wait)
            message = f"too many sign-in attempts from this address: try again in {seconds} s"
            response = self._refusal(request, visitor, Refused(429, "rate_limited", message))
            response.headers["Retry-After"] = seconds
            return response
        try:
            form = await read_form(request)
        except Refused as refused:
            return self._refusal(request, visitor, refused)
        given = form.get("csrf")
        if visitor.fresh or not self._config.signer.csrf_ok(
            visitor.session, given if isinstance(given, str) else None
        ):
            return self._refusal(
                request,
                visitor,
                Refused(403, "csrf", "the form's CSRF token is missing or invalid: reload the page"),
            )
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        given_next = form.get("next")
        next_page = _local(given_next if isinstance(given_next, str) else None)
        principal = token_user(self._config.credentials, token)
        if principal is None:
            log.info("console sign-in refused from %s", request.client.host if request.client else "-")
            return self._page(request, visitor, "login.html", 401, next=next_page, failed=True)
        # (the token's bytes as the credentials matched them: see Credentials._match)
        holder = self._config.signer.holder(token.encode("latin-1"))
        session = self._config.signer.new(holder, self._config.clock())  # a new CSRF seed too
        response = RedirectResponse(next_page, 303)
        self._set_cookie(response, session)
        log.info("console sign-in by %s", principal.name)
        return self._answer(request, Visitor(session, principal, False), response)

    async def logout(self, request: Request, visitor: Visitor) -> Response:
        """End the session for good (store/console_sessions.py), then clear its cookie."""
        session = visitor.session
        expires = datetime.fromtimestamp(session.expires_at, UTC)
        await end_session(self._config.engine, session.nonce, expires, self._config.clock())
        log.info("console sign-out by %s", visitor.principal.name if visitor.principal else "-")
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(COOKIE_NAME, path=PREFIX, secure=True, httponly=True, samesite="lax")
        return response


def _local(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/incidents"


def session_key(configured: str | None) -> bytes:
    """The configured key, or a random one for this process."""
    return configured.encode() if configured else secrets.token_bytes(32)
