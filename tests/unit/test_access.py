"""Scoped tokens through real HTTP: every route of the receiver by every scope answers 2xx or 403;
no or a bad token 401; the route → scope table covers every route (default deny); the tokens'
formats and the tokens file's mode; the actor is the token's name, never the caller's ``by``."""

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.access import ApiToken, Scope, TokenFormatError, parse_token_entries
from models.alert import AlertRecord
from models.events import Actor, EventType, IncidentEvent
from models.incident import Command, apply_command
from models.settings import Settings
from receiver.access import (
    ROUTE_ACCESS,
    Credentials,
    RouteWithoutAccess,
    TokenFileError,
    load_token_file,
)
from receiver.app import WEBHOOK_PATH, create_app
from receiver.callbacks import callback_routes
from receiver.incident_api import API_COMMAND_ROUTES, incident_routes
from receiver.slack_callers import SlackCallers
from sevflow.admin import Who, new_window
from sevflow.admin_api import admin_routes
from sevflow.roles.receiver import receiver_credentials
from sinks.slack_format import announcement, update_line
from store import audit
from store.db import async_engine
from store.maintenance import MaintenanceStore
from testkit.fakes.events import IncidentStory
from tests.builders import CommandRecorder
from tests.conftest import AM_FIXTURES, load_fixture
from tests.unit.test_escalation_cli import incidents_in_every_state

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECRETS = {scope: f"secret-of-the-{scope.value}-token" for scope in Scope}
WEBHOOK_BODY = json.dumps(
    load_fixture(AM_FIXTURES / "alertmanager-v0.25.0-captured__firing_three_alerts.json")
).encode()


class Publisher:
    """The receiver's Kafka boundary: takes every record."""

    async def publish(self, records: list[AlertRecord]) -> None:
        return None

    def note_unanswered(self, records: list[AlertRecord]) -> None:
        return None

    async def ready(self) -> bool:
        return True


def tokens() -> list[ApiToken]:
    return [
        ApiToken(name=f"{scope.value}-bot", scopes=frozenset({scope}), secret=SecretStr(secret))
        for scope, secret in SECRETS.items()
    ]


@dataclass
class Receiver:
    http: httpx.AsyncClient
    app: Starlette
    ids: dict[str, str]
    commands: CommandRecorder
    engine: AsyncEngine


async def serve(tmp_path: Path, kafka: str) -> AsyncIterator[Receiver]:
    """The receiver as ``sevflow receiver`` assembles it, on a SQLite store with an incident in
    each state, Kafka at ``kafka`` (its topics named for this test); one token per scope."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    suffix = tmp_path.name[-24:].replace("_", "-")
    settings = Settings(
        database_url=url,
        kafka_bootstrap=kafka,
        sinks_dlq_topic=f"access-dlq-{suffix}",
        alerts_quarantine_topic=f"access-aq-{suffix}",
        commands_quarantine_topic=f"access-cq-{suffix}",
        events_topic=f"access-events-{suffix}",
    )
    ids = await incidents_in_every_state(url)
    engine = async_engine(url)
    commands = CommandRecorder()
    # (The button presses are not this test's: Slack is never asked who pressed.)
    callers = SlackCallers(SecretStr("xoxb-unused"), "http://127.0.0.1:1", "T1", allow_insecure=True)
    callbacks = callback_routes(
        commands,
        slack_signing_secret=SecretStr("slack-secret"),
        slack_callers=callers,
        pagerduty_secrets=[SecretStr("pd-secret")],
        pagerduty_account="acme",
        clock=lambda: NOW,
    )
    app = create_app(
        publisher=Publisher(),  # type: ignore[arg-type]
        auth=Credentials(tokens()),
        now=lambda: NOW,
        extra_routes=[
            *incident_routes(engine, commands=[r for r in callbacks if r.name in API_COMMAND_ROUTES]),
            *(r for r in callbacks if r.name not in API_COMMAND_ROUTES),
            *admin_routes(settings, engine, clock=lambda: NOW),
        ],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sevflow.test") as http:
        yield Receiver(http, app, ids, commands, engine)
    await engine.dispose()
    await callers.close()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    """:func:`serve` with no Kafka: the DLQ and quarantine routes answer 503 to the admin."""
    async for served_receiver in serve(tmp_path, "127.0.0.1:1"):
        yield served_receiver


#: For each scoped route: the request an authorised caller makes (path, keyword arguments).
Sample = Callable[[dict[str, str]], tuple[str, dict[str, Any]]]
SAMPLES: dict[tuple[str, str], Sample] = {
    ("POST", WEBHOOK_PATH): lambda ids: (
        WEBHOOK_PATH,
        {"content": WEBHOOK_BODY, "headers": {"content-type": "application/json"}},
    ),
    ("GET", "/api/incidents"): lambda ids: ("/api/incidents", {}),
    ("GET", "/api/incidents/{incident_id}"): lambda ids: (f"/api/incidents/{ids['triggered']}", {}),
    ("POST", "/api/incidents/{incident_id}/ack"): lambda ids: (
        f"/api/incidents/{ids['triggered']}/ack",
        {"json": {"by": "<!channel>"}},
    ),
    ("POST", "/api/incidents/{incident_id}/resolve"): lambda ids: (
        f"/api/incidents/{ids['acknowledged']}/resolve",
        {},
    ),
    ("POST", "/api/incidents/{incident_id}/escalate"): lambda ids: (
        f"/api/incidents/{ids['triggered']}/escalate",
        {"json": {"to": "manager"}},
    ),
    ("POST", "/api/incidents/{incident_id}/notes"): lambda ids: (
        f"/api/incidents/{ids['triggered']}/notes",
        {"json": {"text": "rolled back"}},
    ),
    ("GET", "/api/maintenance"): lambda ids: ("/api/maintenance", {}),
    ("POST", "/api/maintenance"): lambda ids: (
        "/api/maintenance",
        {"json": {"matchers": ['service="checkout"'], "end": "+2h", "comment": "db upgrade"}},
    ),
    ("POST", "/api/maintenance/{window_id}/end"): lambda ids: (
        f"/api/maintenance/{ids['window']}/end",
        {},
    ),
    ("GET", "/api/dlq"): lambda ids: ("/api/dlq?limit=5", {}),
    ("POST", "/api/dlq/replay"): lambda ids: ("/api/dlq/replay", {"json": {"sink": "slack"}}),
    ("GET", "/api/quarantine"): lambda ids: ("/api/quarantine", {}),
    ("POST", "/api/quarantine/replay"): lambda ids: ("/api/quarantine/replay", {"json": {}}),
}
#: Routes that read or write Kafka: 2xx for the admin only with a broker (the integration test).
KAFKA_ROUTES = {
    ("GET", "/api/dlq"),
    ("POST", "/api/dlq/replay"),
    ("GET", "/api/quarantine"),
    ("POST", "/api/quarantine/replay"),
}


def served(app: Starlette) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    )


async def test_every_route_of_the_receiver_is_in_the_scope_table(receiver: Receiver) -> None:
    routes = served(receiver.app)
    assert routes, "no routes?"
    assert [r for r in routes if r not in ROUTE_ACCESS] == []
    scoped = [r for r in routes if isinstance(ROUTE_ACCESS[r], Scope)]
    assert sorted(scoped) == sorted(r for r in SAMPLES if r in routes)


def test_a_route_missing_from_the_table_is_refused_when_the_app_is_built() -> None:
    async def anything(_: Request) -> Response:
        return JSONResponse({"secret": "everything"})

    with pytest.raises(RouteWithoutAccess, match="GET /api/new-thing"):
        create_app(
            publisher=Publisher(),  # type: ignore[arg-type]
            auth=Credentials(tokens()),
            now=lambda: NOW,
            extra_routes=[Route("/api/new-thing", anything)],
        )


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_route_with_each_scope_is_2xx_or_403(
    receiver: Receiver, route: tuple[str, str]
) -> None:
    await check_scopes(receiver, route, kafka=False)


async def check_scopes(receiver: Receiver, route: tuple[str, str], *, kafka: bool) -> None:
    method, _ = route
    needed = ROUTE_ACCESS[route]
    await add_window(receiver)
    for scope in Scope:
        if scope is needed and route in KAFKA_ROUTES and not kafka:
            continue  # the integration test: without a broker it could only be a 503
        path, options = SAMPLES[route](receiver.ids)
        headers = {**options.pop("headers", {}), "authorization": f"Bearer {SECRETS[scope]}"}
        response = await receiver.http.request(method, path, headers=headers, **options)
        if scope is needed:
            assert 200 <= response.status_code < 300, (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert response.json() == {
                "error": "forbidden",
                "message": f"this request needs the {needed} scope",
                "scope": str(needed),
            }
        assert SECRETS[scope] not in response.text


async def add_window(receiver: Receiver) -> None:
    """A window for the end route to end (stored directly: the API's create is under test)."""
    window = new_window(['service="db"'], NOW, NOW + timedelta(hours=1), "", Who("t", "cli"))
    await MaintenanceStore(receiver.engine).add(window)
    receiver.ids["window"] = window.id


@pytest.mark.integration
@pytest.mark.parametrize("route", sorted(KAFKA_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_the_kafka_routes_with_each_scope_are_2xx_or_403(
    tmp_path: Path, kafka_bootstrap: str, route: tuple[str, str]
) -> None:
    async for receiver in serve(tmp_path, kafka_bootstrap):
        await check_scopes(receiver, route, kafka=True)
        if route[0] == "POST":
            family = route[1].split("/")[2]  # dlq, quarantine
            (entry,) = await audit.listing(receiver.engine, action=family)
            assert (entry.actor, entry.via) == ("admin-bot", "api")


@pytest.mark.parametrize("route", sorted(SAMPLES), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic d2ViaG9vazp4"])
async def test_no_or_a_bad_token_is_401(
    receiver: Receiver, route: tuple[str, str], authorization: str | None
) -> None:
    method, _ = route
    await add_window(receiver)
    path, options = SAMPLES[route](receiver.ids)
    headers = options.pop("headers", {})
    if authorization:
        headers["authorization"] = authorization
    response = await receiver.http.request(method, path, headers=headers, **options)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert receiver.commands.commands == []


async def test_public_routes_need_no_token(receiver: Receiver) -> None:
    for method, path in served(receiver.app):
        if ROUTE_ACCESS[method, path] == "public":
            assert (await receiver.http.request(method, path)).status_code == 200, path


async def test_the_webhook_credential_can_post_alerts_and_nothing_else(tmp_path: Path) -> None:
    """SEVFLOW_WEBHOOK_TOKENS / _BASIC_AUTH: the webhook scope only, also with SEVFLOW_API_TOKENS
    unset (the API took the webhook tokens until now)."""
    settings = Settings(webhook_tokens="am-token", webhook_basic_auth="am:pass")
    credentials = receiver_credentials(settings)
    for header in ("Bearer am-token", "Basic YW06cGFzcw=="):
        principal = credentials.identify(header)
        assert principal is not None
        assert principal.scopes == {Scope.WEBHOOK}


def test_without_api_tokens_the_start_up_log_says_what_to_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sevflow")
    receiver_credentials(Settings(webhook_tokens="am-token"))
    (line,) = [r.getMessage() for r in caplog.records]
    assert "SEVFLOW_API_TOKENS=<name>:read,write:<secret>" in line
    assert "am-token" not in line
    caplog.clear()
    receiver_credentials(Settings(webhook_tokens="am-token", api_tokens="ops:read:x-secret"))
    assert caplog.records == []


# --- the configuration formats ----------------------------------------------------------------


def test_entries_with_several_scopes_and_rotation() -> None:
    parsed = parse_token_entries("grafana:read:g1, bot:read,write:b1,bot:read,write:b2,ops:admin:o:1")
    assert [(t.name, sorted(t.scopes), t.secret.get_secret_value()) for t in parsed] == [
        ("grafana", [Scope.READ], "g1"),
        ("bot", [Scope.READ, Scope.WRITE], "b1"),
        ("bot", [Scope.READ, Scope.WRITE], "b2"),
        ("ops", [Scope.ADMIN], "o:1"),
    ]
    both = Credentials(parsed)
    assert [both.identify(f"Bearer {s}") for s in ("b1", "b2")] == [both.identify("Bearer b1")] * 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a-bare-secret", "bare token"),
        ("ops:root:secret-value", "scopes must be among"),
        ("ops:read", "has no secret"),
        ("ops:read,write", "has no secret"),
        ("<@U0123456>:read:secret-value", "the name must be"),
        ("ops:read:", "empty"),
    ],
)
def test_malformed_entries_are_refused_without_their_secret(text: str, problem: str) -> None:
    with pytest.raises(TokenFormatError, match=problem) as caught:
        parse_token_entries(text)
    assert "secret-value" not in str(caught.value)
    assert "a-bare-secret" not in str(caught.value)
    with pytest.raises(ValidationError) as settings_error:
        Settings(api_tokens=text)
    assert "secret-value" not in str(settings_error.value.errors(include_input=False))


def test_the_same_secret_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="configured twice"):
        receiver_credentials(Settings(webhook_tokens="shared", api_tokens="ops:read:shared"))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_tokens_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "tokens"
    path.write_text("ops:admin:file-secret\n")
    os.chmod(path, mode)
    with pytest.raises(TokenFileError, match=f"mode {mode:04o}.*chmod 600") as caught:
        load_token_file(path)
    assert "file-secret" not in str(caught.value)
    settings = Settings(webhook_tokens="am", api_tokens_file=path)
    with pytest.raises(TokenFileError):
        receiver_credentials(settings)


def test_a_private_tokens_file_adds_its_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# the operators\nops:admin:file-secret\n\nbot:read,write:bot-secret\n")
    os.chmod(path, 0o600)
    credentials = receiver_credentials(Settings(api_tokens="grafana:read:g", api_tokens_file=path))
    assert credentials.identify("Bearer file-secret") is not None
    assert credentials.identify("Bearer g") is not None
    principal = credentials.identify("Bearer bot-secret")
    assert principal is not None
    assert principal.name == "bot"


# --- the actor --------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["<@U0123456>", "<!channel>"])
async def test_by_never_becomes_the_actor_nor_a_mention(receiver: Receiver, by: str) -> None:
    incident_id = receiver.ids["triggered"]
    response = await receiver.http.post(
        f"/api/incidents/{incident_id}/ack",
        json={"by": by},
        headers={"authorization": f"Bearer {SECRETS[Scope.WRITE]}"},
    )
    assert response.status_code == 202
    (command,) = receiver.commands.commands
    assert command.actor == Actor(via="api", name="write-bot", note=by)
    # Where Slack shows the acknowledgement: the #incidents announcement (its Lead) and the
    # update line in the incident channel. Neither may carry a mention or a broadcast.
    event = acknowledged_event(command.actor)
    lead = json.dumps(announcement(event.incident, lead="@oncall", channel="#incidents").blocks)
    line = update_line(event) or ""
    for text in (lead, line):
        assert "<@U0123456>" not in text
        assert "<!channel>" not in text
    assert "*Lead:* @write-bot" in lead
    assert "Acknowledged by write-bot (via api)" in line
    assert "&lt;" in line  # the note, shown escaped
    assert event.type is EventType.ACKNOWLEDGED


def test_a_verified_slack_user_id_still_is_a_mention() -> None:
    event = acknowledged_event(Actor(via="slack", name="<@U0123456>"))
    lead = announcement(event.incident, lead="@oncall", channel="#incidents").text
    assert "<@U0123456>" in lead


def acknowledged_event(actor: Actor) -> IncidentEvent:
    """The ``acknowledged`` event the worker emits for a command of ``actor``."""
    story = IncidentStory()
    story.fire()
    assert story.incident is not None
    command = Command(
        command_id="api:1",
        action="acknowledge",
        incident_id=story.incident.id,
        actor=actor,
        requested_at=NOW,
    )
    outcome = apply_command(story.incident, command, NOW)
    (event,) = (e for e in outcome.events if e.type is EventType.ACKNOWLEDGED)
    return event


async def test_the_admin_api_guards_maintenance_windows_and_records_the_token(
    receiver: Receiver,
) -> None:
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    broad = {"matchers": ['service!="checkout"'], "end": "+1h", "by": "<!channel>"}
    refused = await receiver.http.post("/api/maintenance", json=broad, headers=admin)
    assert (refused.status_code, refused.json()["error"]) == (422, "needs_force")
    assert "matches every alert" in refused.json()["problems"][0]
    long = {"matchers": ['service="db"'], "end": "+3d"}
    assert (await receiver.http.post("/api/maintenance", json=long, headers=admin)).status_code == 422
    listed = await receiver.http.get("/api/maintenance", headers=admin)
    assert listed.json()["windows"] == []
    forced = await receiver.http.post("/api/maintenance", json={**broad, "force": True}, headers=admin)
    assert forced.status_code == 201
    window = forced.json()["window"]
    assert (window["created_by"], window["state"]) == ("admin-bot", "active")
    ended = await receiver.http.post(f"/api/maintenance/{window['id']}/end", headers=admin)
    assert ended.json()["window"]["state"] == "ended"
    created, finished = await audit.listing(receiver.engine, action="maintenance")
    assert (created.actor, created.via, created.note) == ("admin-bot", "api", "<!channel>")
    assert created.details["forced"] == forced.json()["forced"]
    assert (finished.action, finished.actor) == ("maintenance.ended", "admin-bot")
    unknown = await receiver.http.post("/api/maintenance/mw_nope/end", headers=admin)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/dlq/replay", {"sink": "slack", "events": None}, "events"),
        ("/api/quarantine/replay", {"positions": None}, "positions"),
    ],
    ids=["dlq replay", "quarantine replay"],
)
async def test_a_null_list_in_a_replay_is_refused_not_read_as_every_record(
    receiver: Receiver, path: str, body: dict[str, object], field: str
) -> None:
    """Left out, ``events`` or ``positions`` means every record; a null was read the same way,
    and replayed everything for a client that meant nothing (before Kafka is asked)."""
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    refused = await receiver.http.post(path, json=body, headers=admin)
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
    assert refused.json()["message"].startswith(f"{field} must be a list of strings")


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/api/maintenance", {"matchers": ['service="db"'], "end": "+1h", "coment": "x"}, "'coment'"),
        ("/api/dlq/replay", {"sink": "slack", "event": ["e1"]}, "'event'"),
        ("/api/quarantine/replay", {"position": ["alerts[0]@5"]}, "'position'"),
    ],
    ids=["maintenance", "dlq replay", "quarantine replay"],
)
async def test_the_admin_api_refuses_a_field_it_does_not_take_by_name(
    receiver: Receiver, path: str, body: dict[str, object], named: str
) -> None:
    """A misspelt field is refused, not ignored: a replay without its ``positions`` would send
    every quarantined record again (before Kafka is even asked: no broker here)."""
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    refused = await receiver.http.post(path, json=body, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_request"
    assert refused.json()["message"].startswith(f"unknown field(s) {named}: this request takes ")
    assert (await receiver.http.get("/api/maintenance", headers=admin)).json()["windows"] == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"matchers": ["service=~\\"\\ud800\\""], "end": "+1h"}',
        b'{"matchers": ["service=\\"\\udfff\\""], "end": "+1h"}',
        b'{"matchers": ["service=\\"db\\""], "end": "+1h", "comment": "\\ud800"}',
        b'{"matchers": ["service=\\"db\\""], "end": "+1h", "by": "x\\udc80"}',
        b'{"matchers": ["service=\\"db\\""], "end": "+1h\\ud800"}',
    ],
)
async def test_the_admin_api_refuses_a_lone_surrogate_by_name(receiver: Receiver, body: bytes) -> None:
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}", "content-type": "application/json"}
    refused = await receiver.http.post("/api/maintenance", content=body, headers=admin)
    assert refused.status_code == 422, refused.text
    assert "surrogate" in refused.json()["message"]
    assert (await receiver.http.get("/api/maintenance", headers=admin)).json()["windows"] == []


@pytest.mark.parametrize(
    "times",
    [
        {"end": "0001-01-01T00:00:00+01:00"},
        {"end": "9999-12-31T23:59:59-01:00"},
        {"start": "0001-01-01T00:30:00+02:00", "end": "+1h"},
    ],
)
async def test_a_maintenance_time_beyond_the_calendar_in_utc_is_refused_by_name(
    receiver: Receiver, times: dict[str, str]
) -> None:
    """A time the calendar holds only in its own zone was an unhandled OverflowError (500)."""
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    window = {"matchers": ['service="db"'], **times}
    refused = await receiver.http.post("/api/maintenance", json=window, headers=admin)
    assert refused.status_code == 422, refused.text
    assert "out of range once converted to UTC" in refused.json()["message"]
    assert (await receiver.http.get("/api/maintenance", headers=admin)).json()["windows"] == []


async def test_a_method_a_path_does_not_take_is_405_naming_every_one_it_does(
    receiver: Receiver,
) -> None:
    """GET and POST of /api/maintenance were two routes, and a PUT was answered by the first:
    405 with ``Allow: GET, HEAD``, as if the path took no POST."""
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    put = await receiver.http.put("/api/maintenance", headers=admin)
    assert put.status_code == 405
    assert set(put.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert put.json()["error"] == "method_not_allowed"
    assert (await receiver.http.get("/api/maintenance", headers=admin)).status_code == 200
