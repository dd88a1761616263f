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

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from analytics.database import load_incident_times, load_response_timelines
from analytics.figures import compute_report
from analytics.incidents import IncidentFilter, find_incidents, load_incident
from analytics.postmortem import render_postmortem
from models.access import Scope
from models.events import IncidentState
from models.incident import Incident
from models.severity import Severity
from receiver.console.base import (
    PREFIX,
    ConsoleBase,
    ConsoleConfig,
    Refused,
    Visitor,
    session_key,
)
from receiver.console.charts import Bar, bar_chart
from receiver.console.deliveries import summarize
from receiver.console.escalation_view import levels_ahead
from receiver.console.forms import read_form
from receiver.console.links import Link, incident_links
from receiver.console.targets import format_duration, responded_severities, response_clock
from store.delivery_steps import incident_steps
from store.escalations import EscalationRepo

__all__ = ["PREFIX", "Console", "ConsoleConfig", "session_key"]

_LIST_LIMIT = 200
_RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class Console(ConsoleBase):
    """The console's pages and actions; :func:`receiver.console.routes.console_mount` serves them."""

    # --- incidents ----------------------------------------------------------------------------

    async def incidents(self, request: Request, visitor: Visitor) -> Response:
        now = self._config.clock()
        params = request.query_params
        criteria = _criteria(params, now)
        page = await find_incidents(self._config.engine, criteria, limit=_LIST_LIMIT)
        answered = [i for i in page.incidents if i.acknowledged_at or i.resolved_at]
        timelines = await load_response_timelines(self._config.engine, [i.id for i in answered])
        at_response = responded_severities(answered, timelines)
        targets = self._config.targets
        rows = [
            {"incident": i, "clock": response_clock(i, targets, now, at_response.get(i.id))}
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
            raise Refused(404, "not_found", f"no incident {incident_id}")
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
        timeline = sorted(detail.timeline, key=lambda e: e.sequence)
        at_response = responded_severities([incident], {incident.id: timeline}).get(incident.id)
        return self._page(
            request,
            visitor,
            template,
            incident=incident,
            clock=response_clock(incident, self._config.targets, now, at_response),
            timeline=timeline,
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
            raise Refused(404, "not_found", f"no incident {incident_id}")
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
            form = await read_form(request)
            body: dict[str, Any] = {}
            for name in ("root_cause", "fix", "follow_up", "by", "text"):
                value = form.get(name)
                if isinstance(value, str) and value.strip():
                    body[name] = value.strip()
            if action == "escalate":
                body["to"] = "manager"
            # The episode the page showed (the incident's flaps): once it reopened since, the API
            # refuses the command (409 incident_reopened) instead of acting on the new episode.
            episode = form.get("episode")
            if isinstance(episode, str) and episode:
                if not (episode.isascii() and episode.isdigit() and len(episode) <= 9):
                    raise Refused(422, "invalid_body", "episode must be the incident's flaps")
                body["episode"] = int(episode)
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
                raise Refused(
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
        # (At most 4 ASCII digits: ``int`` refuses over 4,300 digits, which was a 500.)
        well_formed = len(days) <= 4 and days.isascii() and days.isdigit()
        period = int(days) if well_formed and 0 < int(days) <= 3660 else 30
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
        form = await read_form(request)
        matchers = [m.strip() for m in str(form.get("matchers", "")).splitlines() if m.strip()]
        body: dict[str, Any] = {"matchers": matchers, "end": str(form.get("end", "")).strip()}
        comment = str(form.get("comment", "")).strip()
        if comment:
            body["comment"] = comment
        result = await self._api.call(visitor.principal, "POST", "/api/maintenance", body=body)
        if not result.ok:
            raise Refused(result.status, str(result.document.get("error", "refused")), result.message)
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
            raise Refused(result.status, str(result.document.get("error", "refused")), result.message)
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
        form = await read_form(request)
        body: dict[str, Any] = {}
        sink = str(form.get("sink", "")).strip()
        if sink:
            body["sink"] = sink
        events = [e for e in form.getlist("events") if isinstance(e, str) and e]
        if events:
            body["events"] = events
        result = await self._api.call(visitor.principal, "POST", "/api/dlq/replay", body=body)
        if not result.ok:
            raise Refused(result.status, str(result.document.get("error", "refused")), result.message)
        return RedirectResponse(f"{PREFIX}/dlq?done=replayed", 303)


def _criteria(params: Any, now: datetime) -> IncidentFilter:
    def choice(name: str, kind: type[IncidentState] | type[Severity]) -> Any:
        value = params.get(name)
        if not value:
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(c.value for c in kind)
            raise Refused(400, "invalid_parameter", f"{name} must be one of {allowed}") from None

    span = params.get("range") or ""
    if span and span not in _RANGES:
        raise Refused(400, "invalid_parameter", f"range must be one of {', '.join(_RANGES)}")
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
