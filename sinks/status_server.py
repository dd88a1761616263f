"""The built-in status page: HTML for people, JSON for machines, from sevflow's own table.

``GET /`` the page; ``GET /api/status.json`` the same data; ``GET /health`` liveness. The view is
built by the pure :func:`page_view` from the stored incidents and ``now``.

The page is read most when something is broken, the database included, and shares the sinks'
connection pool. Requests arriving together share one read of the store (:class:`_Views`); a
read that fails or takes longer than ``read_timeout`` is answered with the last view read (its
``generated_at`` says how old it is), or with 503 and ``Retry-After`` when there is none yet.
"""

import asyncio
import hashlib
import html
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.clock import Clock
from store.status_page import StatusPageRecord, StatusPageStore

__all__ = [
    "HISTORY",
    "READ_TIMEOUT",
    "create_status_app",
    "page_view",
    "public_id",
    "render_html",
]

log = logging.getLogger(__name__)

HISTORY = timedelta(days=14)
#: How long a request waits for the store before answering from the last view (seconds).
READ_TIMEOUT = 5.0
#: Retry-After of a 503 (no view read yet), in seconds.
RETRY_AFTER = 30
#: Worst first; a component shows the worst status any open incident gives it.
_ORDER = ["major_outage", "partial_outage", "degraded_performance", "under_maintenance", "operational"]
_WORDS = {
    "major_outage": "Major outage",
    "partial_outage": "Partial outage",
    "degraded_performance": "Degraded performance",
    "under_maintenance": "Under maintenance",
    "operational": "Operational",
}
_STATUS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


def public_id(incident_id: str) -> str:
    """The id an incident goes by on the public page: stable (a reader can follow an entry from
    one fetch to the next) but not the internal id, which the incident API, the console and
    Slack know it by and which would tie a public entry to an internal record."""
    return "pub_" + hashlib.sha256(f"sevflow status page\x00{incident_id}".encode()).hexdigest()[:16]


def _incident(record: StatusPageRecord) -> dict[str, Any]:
    return {
        "id": public_id(record.incident_id),
        "name": record.name,
        "status": record.status,
        "impact": record.impact,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
        "components": record.components,
        "updates": list(reversed(record.updates)),
    }


def page_view(
    open_incidents: list[StatusPageRecord], history: list[StatusPageRecord], now: datetime
) -> dict[str, Any]:
    """Overall status, components and incidents, as served by ``/api/status.json``."""
    components: dict[str, str] = {}
    for record in history + open_incidents:
        for name in record.components:
            components.setdefault(name, "operational")
    for record in open_incidents:
        for name, status in record.components.items():
            if _ORDER.index(status) < _ORDER.index(components[name]):
                components[name] = status
    worst = min((_ORDER.index(s) for s in components.values()), default=len(_ORDER) - 1)
    # An open incident's own impact counts even when it names no component (no service label);
    # impact "none" (a published SEV4) leaves the page operational, as on Statuspage.
    impacts = {"critical": 0, "major": 1, "minor": 2, "none": len(_ORDER) - 1}
    worst = min([worst, *(impacts.get(r.impact, 2) for r in open_incidents)])
    indicator = {0: "critical", 1: "major", 2: "minor"}.get(worst, "none")
    description = "All Systems Operational" if indicator == "none" else "Service disruption"
    return {
        "generated_at": now.isoformat(),
        "status": {"indicator": indicator, "description": description},
        "components": [{"name": name, "status": status} for name, status in sorted(components.items())],
        "incidents": [_incident(r) for r in open_incidents],
        "history": [_incident(r) for r in history],
    }


def _updates_html(incident: dict[str, Any]) -> str:
    items = "".join(
        f"<li><strong>{html.escape(u['status'])}</strong> - {html.escape(u['body'])}"
        f" <time>{html.escape(u['at'][:16].replace('T', ' '))} UTC</time></li>"
        for u in incident["updates"]
    )
    return f"<ul class='updates'>{items}</ul>"


def render_html(view: dict[str, Any], title: str) -> str:
    esc = html.escape
    components = (
        "".join(
            f"<li class='component {esc(c['status'])}'><span>{esc(c['name'])}</span>"
            f"<span class='state'>{esc(_WORDS.get(c['status'], c['status']))}</span></li>"
            for c in view["components"]
        )
        or "<li class='component operational'><span>All components</span>"
        "<span class='state'>Operational</span></li>"
    )
    current = (
        "".join(
            f"<article class='incident impact-{esc(i['impact'])}'><h3>{esc(i['name'])}</h3>"
            f"<p class='status'>{esc(_STATUS.get(i['status'], i['status']))}</p>"
            f"{_updates_html(i)}</article>"
            for i in view["incidents"]
        )
        or "<p class='none'>No incidents right now.</p>"
    )
    history = (
        "".join(
            f"<article class='incident resolved'><h3>{esc(i['name'])}</h3>{_updates_html(i)}</article>"
            for i in view["history"]
        )
        or "<p class='none'>No incidents in the last 14 days.</p>"
    )
    indicator = esc(view["status"]["indicator"])
    generated = esc(view["generated_at"][:16].replace("T", " "))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}}
main{{max-width:880px;margin:0 auto;padding:24px}}
.banner{{padding:18px 22px;border-radius:8px;color:#fff;font-size:1.3em;font-weight:600}}
.banner.none{{background:#2e9d5b}}.banner.minor{{background:#d9a400}}
.banner.major{{background:#e8740c}}.banner.critical{{background:#c8302a}}
ul.components{{list-style:none;padding:0;background:#fff;border-radius:8px}}
.component{{display:flex;justify-content:space-between;padding:12px 18px;
border-bottom:1px solid #e6e8eb}}
.component.operational .state{{color:#2e9d5b}}.component.degraded_performance .state{{color:#d9a400}}
.component.partial_outage .state{{color:#e8740c}}.component.major_outage .state{{color:#c8302a}}
.incident{{background:#fff;border-radius:8px;padding:12px 18px;margin:10px 0;border-left:6px solid #999}}
.impact-critical{{border-color:#c8302a}}.impact-major{{border-color:#e8740c}}
.impact-minor{{border-color:#d9a400}}.resolved{{border-color:#2e9d5b}}
time{{color:#6b7280;font-size:.85em}}
</style></head>
<body><main>
<h1>{esc(title)}</h1>
<div class="banner {indicator}">{esc(view["status"]["description"])}</div>
<h2>Current incidents</h2>{current}
<h2>Components</h2><ul class="components">{components}</ul>
<h2>Past incidents</h2>{history}
<p><a href="/api/status.json">JSON</a> · generated {generated} UTC</p>
</main></body></html>
"""


class _Views:
    """The page's view, read from the store by one read at a time that every request waiting
    shares, and the last view read."""

    def __init__(self, store: StatusPageStore, now: Clock, read_timeout: float) -> None:
        self._store = store
        self._now = now
        self._timeout = read_timeout
        self._reading: asyncio.Task[dict[str, Any]] | None = None
        self.last: dict[str, Any] | None = None

    async def _read(self) -> dict[str, Any]:
        at = self._now()
        view = page_view(
            await self._store.open_incidents(), await self._store.resolved_since(at - HISTORY), at
        )
        self.last = view
        return view

    async def current(self) -> dict[str, Any] | None:
        """A fresh view, else the last one (None: none read yet)."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read())
        try:
            # shield: a request giving up does not cancel the read the others share.
            return await asyncio.wait_for(asyncio.shield(self._reading), self._timeout)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            shown = self.last["generated_at"] if self.last else "none"
            log.warning(
                "status page: store not read (%s); showing the view of %s", type(exc).__name__, shown
            )
            return self.last


def _unavailable(json: bool) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    if json:
        return JSONResponse({"error": "status temporarily unavailable"}, 503, headers)
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Status</title></head>"
        "<body><p>The status is temporarily unavailable. Please try again shortly.</p></body></html>"
    )
    return HTMLResponse(body, 503, headers)


def create_status_app(
    store: StatusPageStore,
    now: Clock,
    title: str,
    *,
    read_timeout: float = READ_TIMEOUT,
) -> Starlette:
    views = _Views(store, now, read_timeout)

    async def index(_request: Request) -> Response:
        view = await views.current()
        return _unavailable(json=False) if view is None else HTMLResponse(render_html(view, title))

    async def status_json(_request: Request) -> Response:
        view = await views.current()
        return _unavailable(json=True) if view is None else JSONResponse(view)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/status.json", status_json),
            Route("/health", health),
        ],
        middleware=[Middleware(_Hardened)],
    )
    # A path with a slash added is an unknown one (404), not a bare 307 whose Location took the
    # caller's Host header: a public page must not send its readers elsewhere on request.
    app.router.redirect_slashes = False
    return app


#: The page is one HTML document with its own inline style and nothing else: no script, no
#: frame, no form, no other origin (a public page should be the last place a text could run).
_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]  # fmt: skip


class _Hardened:
    """Every answer of the public page with :data:`_HEADERS`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self._app(scope, receive, hardened)
