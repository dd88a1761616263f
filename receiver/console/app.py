"""The operator console's pages and forms, served under ``/ui/`` by the receiver's internal app.

=================================  ===================================================  =========
``GET  /ui/login``, ``POST``       sign in with an API token; ``POST /ui/logout``          -
``GET  /ui/incidents``             open first, by severity and age; filters in the URL    read
``GET  /ui/incidents/{id}``        alerts, timeline, deliveries, escalation, runbook      read
``POST /ui/incidents/{id}/ack``    …``/resolve``, ``/escalate``, ``/notes``: the API's     write
``GET  /ui/incidents/{id}/postmortem.md``  the postmortem draft (analytics/postmortem.py)  read
``GET  /ui/analytics``             MTTA / MTTR / SLA per SEV as SVG bar charts             read
``GET  /ui/maintenance`` (+POST)   windows: list, create, end (the admin API's routes)    admin
``GET  /ui/dlq`` (+POST replay)    dead letters: list, replay (the admin API's routes)    admin
=================================  ===================================================  =========

Pages are Jinja2 templates with autoescape: every value from alerts, labels and callers is
escaped. ``?fragment=1`` on the list and the incident page answers the live part alone, which
``console.js`` fetches every 2 seconds (the page works without script, by reloading).

Every POST carries the session's CSRF token (receiver/console/session.py) and is refused with 403
``csrf`` otherwise; a missing scope is 403 naming it. Errors are HTML, or JSON
(``{"error": …, "message": …}`` like the API's) to a caller that asks for JSON.
"""

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from analytics.database import load_incident_times
from analytics.figures import ResponseTargets, compute_report
from analytics.incidents import IncidentFilter, find_incidents, load_incident
from analytics.postmortem import render_postmortem
from models.access import Scope
from models.clock import Clock
from models.escalation import EscalationPolicy, playbook_policy
from models.events import IncidentState
from models.incident import Incident
from models.severity import Severity
from receiver.access import Credentials, Principal
from receiver.console.actions import ApiRoutes, Forbidden
from receiver.console.charts import Bar, bar_chart
from receiver.console.deliveries import summarize
from receiver.console.escalation_view import levels_ahead
from receiver.console.identity import ProxyTrust, identify
from receiver.console.links import Link, LinkSettings, incident_links
from receiver.console.session import COOKIE_NAME, Session, SessionSigner
from receiver.console.targets import (
    PolicyTargets,
    format_duration,
    format_remaining,
    response_clock,
)
from receiver.errors import error_response
from receiver.ratelimit import RateLimiter, retry_after_header
from store.deliveries import DeliveryLog
from store.delivery_steps import incident_steps
from store.escalations import EscalationRepo

__all__ = ["PREFIX", "ConsoleConfig", "console_mount"]

log = logging.getLogger(__name__)

PREFIX = "/ui"
_HERE = Path(__file__).resolve().parent
_LIST_LIMIT = 200
_RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs beyond the API routes: the store, who may sign in, the clock."""

    engine: AsyncEngine
    credentials: Credentials
    signer: SessionSigner
    clock: Clock
    targets: ResponseTargets = field(default_factory=ResponseTargets)
    proxy: ProxyTrust | None = None
    #: The escalation policy (``SEVFLOW_ESCALATION_POLICY_FILE``, the playbook's without one):
    #: its acknowledge targets and business hours time the list's response targets.
    policy: EscalationPolicy = field(default_factory=playbook_policy)
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


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every template: the console shows text from alerts and callers
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["remaining"] = format_remaining
    env.filters["duration"] = format_duration
    return env


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


class Console:
    """The console's handlers; :func:`console_mount` serves them."""

    def __init__(self, config: ConsoleConfig, api: ApiRoutes) -> None:
        self._config = config
        self._api = api
        self._templates = Jinja2Templates(env=_environment())
        self._deadlines = PolicyTargets(config.policy)
        self._log = DeliveryLog(config.engine)

    # --- sessions ------------------------------------------------------------------------------

    def _visitor(self, request: Request) -> Visitor:
        config = self._config
        now = config.clock()
        session = config.signer.decode(request.cookies.get(COOKIE_NAME), now)
        fresh = session is None
        if session is None:
            session = config.signer.new("", now)
        header = request.headers.get(config.proxy.header) if config.proxy else None
        peer = request.client.host if request.client else None
        principal = identify(config.credentials, session.token, config.proxy, peer, header)
        return Visitor(session, principal, fresh)

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

    def _refusal(self, request: Request, visitor: Visitor, refused: _Refused) -> Response:
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
            visitor = self._visitor(request)
            try:
                if request.method == "POST":
                    form = await request.form()
                    given = form.get("csrf")
                    if visitor.fresh or not self._config.signer.csrf_ok(
                        visitor.session, given if isinstance(given, str) else None
                    ):
                        raise _Refused(
                            403, "csrf", "the form's CSRF token is missing or invalid: reload the page"
                        )
                if visitor.principal is None:
                    if request.method == "GET":
                        target = request.url.path + (
                            f"?{request.url.query}" if request.url.query else ""
                        )
                        response = RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", 303)
                        return self._answer(request, visitor, response)
                    raise _Refused(401, "unauthorized", "sign in first")
                if scope not in visitor.principal.scopes:
                    raise _Refused(403, "forbidden", f"this needs the {scope.value} scope")
                return await handler(request, visitor)
            except Forbidden as exc:
                return self._refusal(
                    request, visitor, _Refused(403, "forbidden", f"this needs the {exc.scope} scope")
                )
            except _Refused as refused:
                return self._refusal(request, visitor, refused)
            except SQLAlchemyError as exc:
                log.warning("console cannot read the store: %s", type(exc).__name__)
                return self._refusal(
                    request,
                    visitor,
                    _Refused(503, "store_unavailable", "the incident store cannot be read; retry"),
                )

        return guarded

    # --- sign in and out -------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        visitor = self._visitor(request)
        return self._page(
            request, visitor, "login.html", next=_local(request.query_params.get("next")), failed=False
        )

    async def login(self, request: Request) -> Response:
        visitor = self._visitor(request)
        peer = request.client.host if request.client else "-"
        wait = self._config.login_limiter.acquire(peer, self._config.clock().timestamp())
        if wait > 0:
            log.info("console sign-in rate-limited for %s", peer)
            seconds = retry_after_header(wait)
            message = f"too many sign-in attempts from this address: try again in {seconds} s"
            response = self._refusal(request, visitor, _Refused(429, "rate_limited", message))
            response.headers["Retry-After"] = seconds
            return response
        form = await request.form()
        given = form.get("csrf")
        if visitor.fresh or not self._config.signer.csrf_ok(
            visitor.session, given if isinstance(given, str) else None
        ):
            return self._refusal(
                request,
                visitor,
                _Refused(403, "csrf", "the form's CSRF token is missing or invalid: reload the page"),
            )
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        given_next = form.get("next")
        next_page = _local(given_next if isinstance(given_next, str) else None)
        principal = identify(self._config.credentials, token, None, None, None)
        if principal is None:
            log.info("console sign-in refused from %s", request.client.host if request.client else "-")
            return self._page(request, visitor, "login.html", 401, next=next_page, failed=True)
        session = self._config.signer.new(token, self._config.clock())  # a new CSRF seed too
        response = RedirectResponse(next_page, 303)
        self._set_cookie(response, session)
        log.info("console sign-in by %s", principal.name)
        return self._answer(request, Visitor(session, principal, False), response)

    async def logout(self, request: Request, visitor: Visitor) -> Response:
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(COOKIE_NAME, path=PREFIX, secure=True, httponly=True, samesite="lax")
        return response

    # --- incidents ----------------------------------------------------------------------------

    async def incidents(self, request: Request, visitor: Visitor) -> Response:
        now = self._config.clock()
        params = request.query_params
        criteria = _criteria(params, now)
        page = await find_incidents(self._config.engine, criteria, limit=_LIST_LIMIT)
        rows = [
            {"incident": i, "clock": response_clock(i, self._deadlines, now)}
            for i in _ordered(page.incidents)
        ]
        filters = {k: params.get(k, "") for k in ("state", "severity", "service", "team", "range")}
        template = "_incident_rows.html" if params.get("fragment") else "incidents.html"
        return self._page(
            request,
            visitor,
            template,
            rows=rows,
            filters=filters,
            query=urlencode({k: v for k, v in filters.items() if v}),
            states=[s.value for s in IncidentState],
            severities=[s.value for s in Severity],
            ranges=list(_RANGES),
            more=page.next_cursor is not None,
        )

    async def incident(self, request: Request, visitor: Visitor) -> Response:
        incident_id = request.path_params["incident_id"]
        detail = await load_incident(self._config.engine, incident_id)
        if detail is None:
            raise _Refused(404, "not_found", f"no incident {incident_id}")
        now = self._config.clock()
        incident = detail.incident
        escalation = await EscalationRepo(self._config.engine).get(incident_id)
        triggered = incident.state is IncidentState.TRIGGERED
        ahead = levels_ahead(escalation, now) if triggered else []
        fragment = bool(request.query_params.get("fragment"))
        letters = None if fragment else await self._dead_letters(visitor, incident_id)
        steps = await incident_steps(self._config.engine, incident_id)
        deliveries = summarize(steps, now, letters)
        template = "_incident_live.html" if fragment else "incident.html"
        return self._page(
            request,
            visitor,
            template,
            incident=incident,
            clock=response_clock(incident, self._deadlines, now),
            timeline=sorted(detail.timeline, key=lambda e: e.sequence),
            alerts=detail.alerts,
            escalation=escalation,
            ahead=ahead,
            deliveries=deliveries,
            letters_read=letters is not None,
            links=await self._links(incident_id, {d.sink: d.sent for d in deliveries}),
            open=incident.state is not IncidentState.RESOLVED,
            acknowledged=incident.state is IncidentState.ACKNOWLEDGED,
            idempotency=uuid.uuid4().hex,
            flash=request.query_params.get("done"),
        )

    async def _links(self, incident_id: str, sent: dict[str, int]) -> list[Link]:
        refs = {sink: await self._log.refs(sink, incident_id) for sink in ("slack", "statuspage")}
        return incident_links(incident_id, refs, sent, self._config.links)

    async def _dead_letters(self, visitor: Visitor, incident_id: str) -> list[dict[str, Any]] | None:
        """The DLQ topic's records of the incident, for an admin on the full page (the topic is
        read through the admin API, not every 2 s); None when not read."""
        if (
            visitor.principal is None
            or not visitor.can(Scope.ADMIN)
            or not self._api.has("GET", "/api/dlq")
        ):
            return None
        listing = await self._api.call(visitor.principal, "GET", "/api/dlq", query="limit=1000")
        if not listing.ok:
            return None
        letters = listing.document.get("dead_letters")
        return [x for x in letters or () if isinstance(x, dict) and x.get("incident_id") == incident_id]

    async def postmortem(self, request: Request, visitor: Visitor) -> Response:
        incident_id = request.path_params["incident_id"]
        detail = await load_incident(self._config.engine, incident_id)
        if detail is None:
            raise _Refused(404, "not_found", f"no incident {incident_id}")
        text = render_postmortem(
            detail.incident, detail.timeline, self._config.clock(), self._config.targets
        )
        response = Response(text, media_type="text/markdown; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="postmortem-{incident_id}.md"'
        return self._answer(request, visitor, response)

    def command(self, action: str, path: str) -> Callable[[Request, Visitor], Awaitable[Response]]:
        """The incident API's ``POST path`` for ``action``, as the visitor."""

        async def act(request: Request, visitor: Visitor) -> Response:
            assert visitor.principal is not None
            incident_id = request.path_params["incident_id"]
            form = await request.form()
            body: dict[str, Any] = {}
            for name in ("root_cause", "fix", "follow_up", "by", "text"):
                value = form.get(name)
                if isinstance(value, str) and value.strip():
                    body[name] = value.strip()
            if action == "escalate":
                body["to"] = "manager"
            key = form.get("idempotency")
            result = await self._api.call(
                visitor.principal,
                "POST",
                path,
                path_params={"incident_id": incident_id},
                body=body,
                idempotency_key=key if isinstance(key, str) and key else None,
                client=(request.client.host, request.client.port) if request.client else None,
            )
            if not result.ok:
                raise _Refused(
                    result.status, str(result.document.get("error", "refused")), result.message
                )
            done = f"{action}: {result.document.get('status', 'accepted')}"
            return RedirectResponse(
                f"{PREFIX}/incidents/{quote(incident_id, safe='')}?{urlencode({'done': done})}", 303
            )

        return act

    # --- analytics ------------------------------------------------------------------------------

    async def analytics(self, request: Request, visitor: Visitor) -> Response:
        now = self._config.clock()
        days = request.query_params.get("days", "30")
        period = int(days) if days.isascii() and days.isdigit() and 0 < int(days) <= 3660 else 30
        times = await load_incident_times(self._config.engine, since=now - timedelta(days=period))
        report = compute_report(times, self._config.targets, now)
        rows = [report.by_severity[s] for s in Severity]

        def minutes(stats: Any) -> float | None:
            return None if stats is None else stats.mean.total_seconds() / 60

        def text(stats: Any) -> str:
            return "no data" if stats is None else format_duration(stats.mean)

        mtta = bar_chart(
            "Mean time to acknowledge per SEV",
            [
                Bar(
                    f.severity.value if f.severity else "all",
                    minutes(f.mtta),
                    text(f.mtta),
                    breached=bool(f.mtta and f.target and f.mtta.mean > f.target),
                )
                for f in rows
            ],
        )
        mttr = bar_chart(
            "Mean time to resolve per SEV",
            [
                Bar(f.severity.value if f.severity else "all", minutes(f.mttr), text(f.mttr))
                for f in rows
            ],
        )
        sla = bar_chart(
            "SLA compliance per SEV",
            [
                Bar(
                    f.severity.value if f.severity else "all",
                    None if f.sla_compliance is None else f.sla_compliance * 100,
                    "no data" if f.sla_compliance is None else f"{f.sla_compliance * 100:.0f} %",
                    breached=f.sla_compliance is not None and f.sla_compliance < 1,
                )
                for f in rows
            ],
            maximum=100.0,
        )
        return self._page(
            request,
            visitor,
            "analytics.html",
            days=period,
            rows=rows,
            overall=report.overall,
            charts={"mtta": mtta, "mttr": mttr, "sla": sla},
        )

    # --- maintenance and dead letters (the admin API) ------------------------------------------

    async def maintenance(self, request: Request, visitor: Visitor) -> Response:
        assert visitor.principal is not None
        listing = await self._api.call(visitor.principal, "GET", "/api/maintenance")
        return self._page(
            request,
            visitor,
            "maintenance.html",
            listing=listing.document,
            flash=request.query_params.get("done"),
        )

    async def maintenance_add(self, request: Request, visitor: Visitor) -> Response:
        assert visitor.principal is not None
        form = await request.form()
        matchers = [m.strip() for m in str(form.get("matchers", "")).splitlines() if m.strip()]
        body: dict[str, Any] = {"matchers": matchers, "end": str(form.get("end", "")).strip()}
        comment = str(form.get("comment", "")).strip()
        if comment:
            body["comment"] = comment
        result = await self._api.call(visitor.principal, "POST", "/api/maintenance", body=body)
        if not result.ok:
            raise _Refused(result.status, str(result.document.get("error", "refused")), result.message)
        return RedirectResponse(f"{PREFIX}/maintenance?done=created", 303)

    async def maintenance_end(self, request: Request, visitor: Visitor) -> Response:
        assert visitor.principal is not None
        result = await self._api.call(
            visitor.principal,
            "POST",
            "/api/maintenance/{window_id}/end",
            path_params={"window_id": request.path_params["window_id"]},
            body={},
        )
        if not result.ok:
            raise _Refused(result.status, str(result.document.get("error", "refused")), result.message)
        return RedirectResponse(f"{PREFIX}/maintenance?done=ended", 303)

    async def dead_letters(self, request: Request, visitor: Visitor) -> Response:
        assert visitor.principal is not None
        listing = await self._api.call(visitor.principal, "GET", "/api/dlq")
        return self._page(
            request,
            visitor,
            "dlq.html",
            listing=listing.document,
            flash=request.query_params.get("done"),
        )

    async def dead_letters_replay(self, request: Request, visitor: Visitor) -> Response:
        assert visitor.principal is not None
        form = await request.form()
        body: dict[str, Any] = {}
        sink = str(form.get("sink", "")).strip()
        if sink:
            body["sink"] = sink
        events = [e for e in form.getlist("events") if isinstance(e, str) and e]
        if events:
            body["events"] = events
        result = await self._api.call(visitor.principal, "POST", "/api/dlq/replay", body=body)
        if not result.ok:
            raise _Refused(result.status, str(result.document.get("error", "refused")), result.message)
        return RedirectResponse(f"{PREFIX}/dlq?done=replayed", 303)


def _local(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/incidents"


def _criteria(params: Any, now: datetime) -> IncidentFilter:
    def choice(name: str, kind: type[IncidentState] | type[Severity]) -> Any:
        value = params.get(name)
        if not value:
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(c.value for c in kind)
            raise _Refused(400, "invalid_parameter", f"{name} must be one of {allowed}") from None

    span = params.get("range") or ""
    if span and span not in _RANGES:
        raise _Refused(400, "invalid_parameter", f"range must be one of {', '.join(_RANGES)}")
    service = (params.get("service") or "").strip() or None
    return IncidentFilter(
        state=choice("state", IncidentState),
        severity=choice("severity", Severity),
        service=service,
        team=(params.get("team") or "").strip() or None,
        since=now - _RANGES[span] if span else None,
    )


def _ordered(incidents: Sequence[Incident]) -> list[Incident]:
    """Open first, most severe first, oldest first (waiting longest); then resolved, newest first."""
    open_ = sorted((i for i in incidents if i.is_open), key=lambda i: (i.severity.rank, i.opened_at))
    resolved = sorted((i for i in incidents if not i.is_open), key=lambda i: i.opened_at, reverse=True)
    return open_ + resolved


def console_mount(config: ConsoleConfig, api_routes: Sequence[Route]) -> Mount:
    """The console at ``/ui``: ``api_routes`` are the receiver's API routes (incident commands,
    admin), called in process for the console's actions (receiver/console/actions.py)."""
    console = Console(config, ApiRoutes(api_routes))
    v = console.viewing
    commands = {
        "ack": ("acknowledge", "/api/incidents/{incident_id}/ack"),
        "resolve": ("resolve", "/api/incidents/{incident_id}/resolve"),
        "escalate": ("escalate", "/api/incidents/{incident_id}/escalate"),
        "notes": ("note", "/api/incidents/{incident_id}/notes"),
    }

    async def home(_: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/incidents", 303)

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", v(Scope.READ, console.logout), methods=["POST"]),
        Route("/incidents", v(Scope.READ, console.incidents), methods=["GET"]),
        Route("/incidents/{incident_id}", v(Scope.READ, console.incident), methods=["GET"]),
        Route(
            "/incidents/{incident_id}/postmortem.md",
            v(Scope.READ, console.postmortem),
            methods=["GET"],
        ),
        *(
            Route(
                f"/incidents/{{incident_id}}/{name}",
                v(Scope.WRITE, console.command(action, path)),
                methods=["POST"],
            )
            for name, (action, path) in commands.items()
        ),
        Route("/analytics", v(Scope.READ, console.analytics), methods=["GET"]),
        Route("/maintenance", v(Scope.ADMIN, console.maintenance), methods=["GET"]),
        Route("/maintenance", v(Scope.ADMIN, console.maintenance_add), methods=["POST"]),
        Route("/maintenance/{window_id}/end", v(Scope.ADMIN, console.maintenance_end), methods=["POST"]),
        Route("/dlq", v(Scope.ADMIN, console.dead_letters), methods=["GET"]),
        Route("/dlq/replay", v(Scope.ADMIN, console.dead_letters_replay), methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="console_static"),
    ]
    return Mount(PREFIX, app=Starlette(routes=routes))


def session_key(configured: str | None) -> bytes:
    """The configured key, or a random one for this process."""
    return configured.encode() if configured else secrets.token_bytes(32)
