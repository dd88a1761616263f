"""The built-in status page: HTML for people, JSON for machines, from sevflow's own table.

``GET /`` the page; ``GET /api/status.json`` the same data; ``GET /health`` liveness. The view is
built by the pure :func:`page_view` from the stored incidents and ``now``.
"""

import html
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from store.deliveries import StatusPageRecord, StatusPageStore

__all__ = ["HISTORY", "create_status_app", "page_view", "render_html"]

HISTORY = timedelta(days=14)
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


def _incident(record: StatusPageRecord) -> dict[str, Any]:
    return {
        "id": record.incident_id,
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
    # An open incident's own impact counts even when it names no component (no service label).
    impacts = {"critical": 0, "major": 1, "minor": 2}
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


def create_status_app(store: StatusPageStore, now: Callable[[], datetime], title: str) -> Starlette:
    async def view() -> dict[str, Any]:
        at = now()
        return page_view(await store.open_incidents(), await store.resolved_since(at - HISTORY), at)

    async def index(_request: Request) -> HTMLResponse:
        return HTMLResponse(render_html(await view(), title))

    async def status_json(_request: Request) -> JSONResponse:
        return JSONResponse(await view())

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/status.json", status_json),
            Route("/health", health),
        ]
    )
