"""The Incident API through Starlette's TestClient against a real SQLite store, and its OpenAPI
document: valid OpenAPI 3.1, served, and describing every route."""

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from models.settings import Settings
from receiver.access import ROUTE_ACCESS, Credentials, protect_all
from receiver.callbacks import callback_routes
from receiver.incident_api import OPENAPI_DOCUMENT, incident_routes
from receiver.statuspage_api import publish_route
from sevflow.admin_api import admin_routes
from store.db import async_engine
from testkit.store_backends import fresh_database
from tests.builders import T0, CommandRecorder, api_credentials
from tests.unit.test_analytics_scenario import Scenario, scenario_store
from tests.unit.test_escalation_cli import incidents_in_every_state

TOKEN = "api-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Scenario]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    scenario = scenario_store(url)
    engine = async_engine(url)
    app = Starlette(routes=protect_all(incident_routes(engine), api_credentials(TOKEN)))
    with TestClient(app) as client:
        yield client, scenario
        client.portal.call(engine.dispose)  # the engine's connections live on the client's loop


@pytest.fixture
def commands_api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], CommandRecorder]]:
    """The API's ack / resolve routes behind the incident check, as the receiver serves them; the
    scenario's incidents by state (triggered, acknowledged, resolved)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    by_state = asyncio.run(incidents_in_every_state(url))
    engine = async_engine(url)
    publisher = CommandRecorder()
    commands = [r for r in callback_routes(publisher) if r.path.startswith("/api/")]
    routes = incident_routes(engine, commands=commands)
    app = Starlette(routes=protect_all(routes, api_credentials(TOKEN)))
    with TestClient(app) as client:
        yield client, by_state, publisher
        client.portal.call(engine.dispose)


@pytest.mark.parametrize(
    ("action", "state", "status", "error"),
    [
        ("ack", None, 404, "not_found"),
        ("resolve", None, 404, "not_found"),
        ("ack", "resolved", 409, "incident_resolved"),
        ("escalate", None, 404, "not_found"),
        ("escalate", "resolved", 409, "incident_resolved"),
    ],
)
def test_commands_on_a_missing_or_resolved_incident_are_refused(
    commands_api: tuple[TestClient, dict[str, str], CommandRecorder],
    action: str,
    state: str | None,
    status: int,
    error: str,
) -> None:
    # They were answered 202 "accepted", and the worker then dropped them without a word.
    client, by_state, publisher = commands_api
    incident_id = by_state[state] if state else "inc_ffffffffffffffff"
    body = {"to": "manager"} if action == "escalate" else None
    response = client.post(f"/api/incidents/{incident_id}/{action}", headers=AUTH, json=body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert incident_id in response.json()["message"]
    assert publisher.commands == []
    documented = yaml.safe_load(OPENAPI_DOCUMENT.read_text())["paths"]
    assert str(status) in documented[f"/api/incidents/{{incident_id}}/{action}"]["post"]["responses"]


@pytest.mark.parametrize(("action", "state"), [("ack", "acknowledged"), ("resolve", "resolved")])
def test_a_command_already_applied_is_answered_unchanged(
    commands_api: tuple[TestClient, dict[str, str], CommandRecorder], action: str, state: str
) -> None:
    client, by_state, publisher = commands_api
    response = client.post(f"/api/incidents/{by_state[state]}/{action}", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["state"], body["incident_id"]) == ("unchanged", state, by_state[state])
    assert publisher.commands == []
    document = yaml.safe_load(OPENAPI_DOCUMENT.read_text())
    assert "200" in document["paths"][f"/api/incidents/{{incident_id}}/{action}"]["post"]["responses"]


def test_commands_that_change_the_incident_are_queued(
    commands_api: tuple[TestClient, dict[str, str], CommandRecorder],
) -> None:
    client, by_state, publisher = commands_api
    ack = client.post(f"/api/incidents/{by_state['triggered']}/ack", headers=AUTH)
    resolve = client.post(
        f"/api/incidents/{by_state['acknowledged']}/resolve", headers=AUTH, json={"fix": "rollback"}
    )
    escalate = client.post(
        f"/api/incidents/{by_state['acknowledged']}/escalate", headers=AUTH, json={"to": "manager"}
    )
    assert (ack.status_code, resolve.status_code, escalate.status_code) == (202, 202, 202)
    assert [(c.action, c.incident_id) for c in publisher.commands] == [
        ("acknowledge", by_state["triggered"]),
        ("resolve", by_state["acknowledged"]),
        ("escalate", by_state["acknowledged"]),
    ]
    # Each names the episode the store showed when it was checked: refused once it reopens.
    assert [c.episode for c in publisher.commands] == [0, 0, 0]
    # No token: the incident is not looked up (nobody learns which ids exist), the route says 401.
    assert client.post("/api/incidents/inc_ffffffffffffffff/ack").status_code == 401
    assert client.post("/api/incidents/bad%20id/ack", headers=AUTH).status_code == 422


def test_requests_need_a_valid_bearer_token(api: tuple[TestClient, Scenario]) -> None:
    client, scenario = api
    for path in ("/api/incidents", f"/api/incidents/{scenario.ids['UIGlitch']}"):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith('Bearer realm="sevflow"')
            assert TOKEN not in response.text


def test_no_configured_token_refuses_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fresh_database(url)
    engine = async_engine(url)
    with TestClient(Starlette(routes=protect_all(incident_routes(engine), Credentials()))) as client:
        assert client.get("/api/incidents", headers=AUTH).status_code == 401
        assert client.get("/api/incidents", headers={"authorization": "Bearer "}).status_code == 401
        client.portal.call(engine.dispose)


def test_list_filters_and_shapes(api: tuple[TestClient, Scenario]) -> None:
    client, scenario = api
    everything = client.get("/api/incidents", headers=AUTH)
    assert everything.status_code == 200
    body = everything.json()
    assert body["next_cursor"] is None
    assert [i["slug"] for i in body["incidents"]] == [
        "queue-backlog",
        "ui-glitch",
        "high-latency",
        "checkout-down",
        "high-error-rate",
    ]
    first = body["incidents"][-1]
    assert first["id"] == scenario.ids["HighErrorRate"]
    assert first["acknowledged_by"] == {"via": "slack", "name": "alice"}
    assert first["opened_at"] == "2026-11-27T12:00:00Z"

    def ids(**params: str) -> list[str]:
        response = client.get("/api/incidents", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["incidents"]]

    assert ids(state="triggered") == [scenario.ids["UIGlitch"]]
    assert ids(severity="SEV3", service="queue") == [scenario.ids["QueueBacklog"]]
    assert ids(since="2026-11-27T13:00:00Z", until="2026-11-27T15:00:00+00:00") == [
        scenario.ids["HighLatency"],
        scenario.ids["CheckoutDown"],
    ]


def test_pagination_walks_every_incident_once(api: tuple[TestClient, Scenario]) -> None:
    client, scenario = api
    seen: list[str] = []
    params = {"limit": "2"}
    pages = 0
    while True:
        body = client.get("/api/incidents", params=params, headers=AUTH).json()
        pages += 1
        seen.extend(i["id"] for i in body["incidents"])
        if body["next_cursor"] is None:
            break
        params = {"limit": "2", "cursor": body["next_cursor"]}
    assert pages == 3
    assert sorted(seen) == sorted(scenario.ids.values())
    assert len(seen) == len(set(seen))


def _cursor(opened: str) -> str:
    return base64.urlsafe_b64encode(f"{opened}|inc_0000000000000000".encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "sleeping"}, "state"),
        ({"severity": "SEV5"}, "severity"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-11-27T12:00:00"}, "until"),  # no zone
        ({"since": "2026-11-28T00:00:00Z", "until": "2026-11-27T00:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "\u00b2"}, "limit"),  # "²".isdigit() is True; int() refuses it
        ({"limit": "9" * 5000}, "limit"),  # int() refuses over 4300 digits
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),  # after year 9999 in UTC
        ({"cursor": "garbage"}, "cursor"),
        # A cursor whose time is out of range in UTC was read by the store: 503 + Retry-After.
        ({"cursor": _cursor("0001-01-01T00:00:00+01:00")}, "cursor"),
        ({"cursor": _cursor("9999-12-31T23:59:59-01:00")}, "cursor"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(
    api: tuple[TestClient, Scenario], params: dict[str, str], field: str
) -> None:
    client, _ = api
    response = client.get("/api/incidents", params=params, headers=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_parameter"
    assert body["details"][0]["field"] == field


def test_show_has_timeline_and_alerts(api: tuple[TestClient, Scenario]) -> None:
    client, scenario = api
    response = client.get(f"/api/incidents/{scenario.ids['CheckoutDown']}", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["incident"]["severity"] == "SEV1"
    assert body["incident"]["state"] == "resolved"
    assert [e["type"] for e in body["timeline"]] == [
        "opened",
        "acknowledged",
        "alert_resolved",
        "resolved",
    ]
    assert body["timeline"][1]["actor"] == {"via": "pagerduty", "name": "bob"}
    assert [(a["labels"]["alertname"], a["status"]) for a in body["alerts"]] == [
        ("CheckoutDown", "resolved")
    ]
    missing = client.get("/api/incidents/inc_0000000000000000", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_store_failure_is_503_with_retry_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-tables.db'}"
    engine = async_engine(url)
    app = Starlette(routes=protect_all(incident_routes(engine), api_credentials(TOKEN)))
    with TestClient(app) as client:
        response = client.get("/api/incidents", headers=AUTH)
        client.portal.call(engine.dispose)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "store_unavailable"


def test_openapi_document_is_valid_and_served(api: tuple[TestClient, Scenario]) -> None:
    client, _ = api
    response = client.get("/api/openapi.yaml")  # no token: documentation is public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.content == OPENAPI_DOCUMENT.read_bytes()
    document = yaml.safe_load(response.content)
    validate(document)  # raises when it is not a valid OpenAPI 3.1 document
    assert document["openapi"].startswith("3.1")


def test_missing_openapi_document_is_404(tmp_path: Path) -> None:
    engine = async_engine(f"sqlite:///{tmp_path / 'x.db'}")
    routes = incident_routes(engine, openapi_document=tmp_path / "none.yaml")
    with TestClient(Starlette(routes=routes)) as client:
        assert client.get("/api/openapi.yaml").status_code == 404
        client.portal.call(engine.dispose)


def _operations(routes: list[Route]) -> set[tuple[str, str]]:
    return {(r.path, m.lower()) for r in routes for m in (r.methods or ()) if m != "HEAD"}


def test_every_incident_api_route_is_documented(tmp_path: Path) -> None:
    engine = async_engine(f"sqlite:///{tmp_path / 'x.db'}")
    ours = incident_routes(engine)
    commands = [r for r in callback_routes(_NoPublisher()) if r.path.startswith("/api/")]
    document = yaml.safe_load(OPENAPI_DOCUMENT.read_text())
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    admin = admin_routes(Settings(), engine, clock=lambda: datetime.now(UTC))
    publish = publish_route(engine, _NoPublisher(), clock=lambda: T0)
    served = _operations(ours) | _operations(commands) | _operations(admin) | _operations([publish])
    assert served == documented
    assert ("/api/incidents/{incident_id}/ack", "post") in served  # the commands are covered too
    for path, method in documented - {("/api/openapi.yaml", "get")}:
        operation = document["paths"][path][method]
        assert "401" in operation["responses"], f"{method} {path} does not document 401"
        assert "403" in operation["responses"], f"{method} {path} does not document 403"
        scope = ROUTE_ACCESS[method.upper(), path]
        assert operation["x-sevflow-scope"] == scope, f"{method} {path} documents another scope"
    asyncio.run(engine.dispose())


class _NoPublisher:
    """Only to list the command routes; never called."""

    async def publish(self, command: object) -> None:
        raise AssertionError("not used")


@pytest.mark.parametrize(("action", "body"), [("ack", {}), ("notes", {"text": "rolled back"})])
def test_a_command_naming_an_episode_the_incident_has_not_reached_is_refused(
    commands_api: tuple[TestClient, dict[str, str], CommandRecorder], action: str, body: dict[str, str]
) -> None:
    """Episodes only grow: one ahead of the store's was read elsewhere or made up. It was
    answered 202 and applied as if it named the current episode."""
    client, by_state, publisher = commands_api
    incident_id = by_state["triggered"]  # (never reopened: episode 0)
    ahead = client.post(
        f"/api/incidents/{incident_id}/{action}", headers=AUTH, json=body | {"episode": 3}
    )
    assert ahead.status_code == 409
    assert ahead.json() == {
        "error": "episode_not_reached",
        "message": "issued for episode 3, which the incident has not reached (episode 0)",
    }
    assert publisher.commands == []
    current = client.post(
        f"/api/incidents/{incident_id}/{action}", headers=AUTH, json=body | {"episode": 0}
    )
    assert current.status_code == 202
    assert [c.episode for c in publisher.commands] == [0]
    documented = yaml.safe_load(OPENAPI_DOCUMENT.read_text())["paths"]
    assert "409" in documented[f"/api/incidents/{{incident_id}}/{action}"]["post"]["responses"]
