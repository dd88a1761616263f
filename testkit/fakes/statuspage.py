"""A fake Atlassian Statuspage Manage API v1 (contracts §4.5).

``Authorization: OAuth <key>`` (or ``?api_key=``) else 401 ``{"message": …}``; unknown page or
incident 404; create needs ``incident.name`` and valid enums else 422; errors are
``{"message": …}`` (also for a name over 255 or a body over 25,000 characters). Create answers
201 with an Incident object, PATCH 200; an update is appended when status or body is given;
components on the page follow the ``components`` map.
"""

import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from testkit.fakes.http import FakeServer, Request, Response

__all__ = ["FakeStatuspage"]

STATUSES = {"investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress",
            "verifying", "completed"}  # fmt: skip
IMPACTS = {"none", "maintenance", "minor", "major", "critical"}
COMPONENT_STATUSES = {"operational", "under_maintenance", "degraded_performance", "partial_outage",
                      "major_outage", ""}  # fmt: skip
_ids = itertools.count(1)


def _message(status: int, text: str) -> Response:
    return Response(status, {"message": text})


def _new_id() -> str:
    return f"p{next(_ids):011d}"


class FakeStatuspage:
    def __init__(self, api_key: str, page_id: str, components: list[str]) -> None:
        self.api_key = api_key
        self.page_id = page_id
        self.server = FakeServer(self._handle)
        self.incidents: dict[str, dict[str, Any]] = {}
        self.components = dict.fromkeys(components, "operational")
        self.writes: list[tuple[str, dict[str, Any]]] = []  # accepted (method, body)

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    @property
    def faults(self):  # type: ignore[no-untyped-def]
        return self.server.faults

    def start(self) -> "FakeStatuspage":
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()

    def _handle(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("OAuth ") if auth.startswith("OAuth ") else request.query.get("api_key")
        if key != self.api_key:
            return _message(401, "Could not authenticate")
        match = re.fullmatch(r"/v1/pages/([^/]+)/incidents(?:/([^/.]+))?(?:\.json)?", request.path)
        if match is None:
            return _message(404, "The requested resource could not be found.")
        page, incident_id = match.groups()
        if page != self.page_id:
            return _message(404, "Page not found")
        now = datetime.now(UTC).isoformat()
        if request.method == "GET" and incident_id == "unresolved":
            return Response(200, [i for i in self.incidents.values() if i["status"] != "resolved"])
        if request.method == "GET" and incident_id in self.incidents:
            return Response(200, self.incidents[incident_id])
        if request.method not in ("POST", "PATCH", "PUT"):
            return _message(404, "Not found")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _message(400, "Content-Type must match the body (application/json)")
        try:
            body = json.loads(request.body)
        except ValueError:
            return _message(400, "Malformed JSON")
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _message(400, "incident is missing")
        problem = self._invalid(fields, creating=request.method == "POST")
        if problem:
            return _message(422, problem)
        if request.method == "POST" and incident_id is None:
            incident = {
                "id": _new_id(), "name": fields["name"], "status": fields.get("status", "investigating"),
                "impact": fields.get("impact_override", "none"),
                "impact_override": fields.get("impact_override"), "created_at": now, "updated_at": now,
                "monitoring_at": None, "resolved_at": None, "page_id": page,
                "shortlink": f"http://stspg.io/{next(_ids)}", "incident_updates": [],
                "components": [], "metadata": fields.get("metadata", {}),
            }  # fmt: skip
            self.incidents[incident["id"]] = incident
            self._apply(incident, fields, now)
            self.writes.append(("POST", fields))
            return Response(201, incident)
        incident = self.incidents.get(incident_id or "")
        if incident is None:
            return _message(404, "Incident not found")
        self._apply(incident, fields, now)
        self.writes.append(("PATCH", fields))
        return Response(200, incident)

    def _invalid(self, fields: dict[str, Any], *, creating: bool) -> str | None:
        if creating and not fields.get("name"):
            return "name can't be blank"
        if len(str(fields.get("name", ""))) > 255:
            return "name is too long (maximum is 255 characters)"
        if len(str(fields.get("body", ""))) > 25_000:
            return "body is too long (maximum is 25000 characters)"
        if "status" in fields and fields["status"] not in STATUSES:
            return f"status {fields['status']!r} is not included in the list"
        if "impact_override" in fields and fields["impact_override"] not in IMPACTS:
            return f"impact_override {fields['impact_override']!r} is not included in the list"
        for component, status in (fields.get("components") or {}).items():
            if component not in self.components:
                return f"component {component} not found"
            if status not in COMPONENT_STATUSES:
                return f"component status {status!r} is not included in the list"
        metadata = fields.get("metadata")
        if metadata is not None and not all(isinstance(v, dict) for v in metadata.values()):
            return "metadata values must be objects"
        return None

    def _apply(self, incident: dict[str, Any], fields: dict[str, Any], now: str) -> None:
        for name in ("name", "status", "impact_override", "metadata"):
            if name in fields:
                incident[name] = fields[name]
        if "impact_override" in fields:
            incident["impact"] = fields["impact_override"]
        if "status" in fields or "body" in fields:
            incident["incident_updates"].append(
                {"id": _new_id(), "incident_id": incident["id"], "status": incident["status"],
                 "body": fields.get("body", ""), "created_at": now, "display_at": now}
            )  # fmt: skip
        if fields.get("status") == "resolved":
            incident["resolved_at"] = now
        if fields.get("status") == "monitoring":
            incident["monitoring_at"] = now
        for component, status in (fields.get("components") or {}).items():
            self.components[component] = status
            # The incident lists the components it affects, each with its status (contracts §4.4).
            listed = [c for c in incident["components"] if c["id"] != component]
            incident["components"] = [*listed, {"id": component, "status": status}]
        incident["updated_at"] = now
