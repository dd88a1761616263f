"""Acknowledge / resolve callbacks: the API, Slack buttons, PagerDuty webhooks.

Signatures are checked against the official Slack test vector and the PagerDuty vector of the
contracts; the payloads are the fixtures in tests/fixtures (real Slack block_actions, real
PagerDuty v3 webhooks). The publisher is a recorder at the Kafka boundary (and one that fails
like Kafka).
"""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka.errors import KafkaTimeoutError
from pydantic import SecretStr
from starlette.applications import Starlette

from models.incident import Command
from models.pagerduty_keys import escalation_key, storm_key
from models.settings import Settings
from receiver.access import protect_all
from receiver.callbacks import (
    callback_routes,
    pagerduty_signature,
    routes_from_settings,
    slack_signature,
    verify_pagerduty,
    verify_slack,
)
from receiver.slack_callers import SlackCallers
from sevflow.roles.receiver import receiver_credentials
from testkit.fakes.slack import FakeSlack
from tests.builders import CommandRecorder, api_credentials
from tests.conftest import FIXTURES

SLACK_TOKEN = "xoxb-callbacks-test"

# Slack's documented example ("Verifying requests from Slack"), as in the contracts.
SLACK_VECTOR_SECRET = SecretStr("8f742231b10e8888abcd99yyyzzz85a5")
SLACK_VECTOR_TS = "1531420618"
SLACK_VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    b"IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

PD_VECTOR_SECRET = SecretStr("whsec-test-secret")
PD_VECTOR_BODY = b'{"event":{"id":"01BZYK8N47N5JG55J1EEEHPEJI","event_type":"incident.acknowledged"}}'
PD_VECTOR_SIG = "v1=3ecff3a5d9309112f107b23552afc8e66c709868947d766b324752a980232704"

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SLACK_SECRET = SecretStr("slack-signing-secret-for-tests")
PD_SECRET = SecretStr("pd-webhook-secret-for-tests")
API_TOKEN = SecretStr("api-token-for-tests")
INCIDENT = "inc_0123456789abcdef"


class DownPublisher:
    """Kafka not acknowledging (the real producer raises this on a timeout)."""

    async def publish(self, command: Command) -> None:
        raise KafkaTimeoutError()


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    """Slack's users.info for the button presses: the fixture's user, a member of its team."""
    fake = FakeSlack(SLACK_TOKEN).start()
    fake.add_user("W111", "T111")
    fake.add_user("U0123", "T111")
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _slack_at(fake_slack: FakeSlack) -> None:
    global _slack_url  # client() is called from every test, not a fixture
    _slack_url = fake_slack.url


_slack_url = ""


@asynccontextmanager
async def client(publisher: Any, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    callers = SlackCallers(SecretStr(SLACK_TOKEN), _slack_url, "T111", allow_insecure=True)
    options = {
        "slack_signing_secret": SLACK_SECRET,
        "slack_callers": callers,
        "pagerduty_secrets": [PD_SECRET],
        "pagerduty_account": "pig208",
        "clock": lambda: NOW,
        **options,
    }
    tokens = options.pop("api_tokens", [API_TOKEN])
    app = Starlette(routes=protect_all(callback_routes(publisher, **options), api_credentials(*tokens)))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sevflow.test") as http:
            yield http
    finally:
        await callers.close()


# --- signature vectors -------------------------------------------------------------------------


def test_slack_official_test_vector() -> None:
    assert slack_signature(SLACK_VECTOR_SECRET, SLACK_VECTOR_TS, SLACK_VECTOR_BODY) == SLACK_VECTOR_SIG
    at = datetime.fromtimestamp(int(SLACK_VECTOR_TS), UTC)
    assert verify_slack(SLACK_VECTOR_SECRET, SLACK_VECTOR_TS, SLACK_VECTOR_SIG, SLACK_VECTOR_BODY, at)
    # The replay window is five minutes either way.
    assert verify_slack(
        SLACK_VECTOR_SECRET,
        SLACK_VECTOR_TS,
        SLACK_VECTOR_SIG,
        SLACK_VECTOR_BODY,
        at + timedelta(seconds=300),
    )
    for moment in (at + timedelta(seconds=301), at - timedelta(seconds=301)):
        assert not verify_slack(
            SLACK_VECTOR_SECRET, SLACK_VECTOR_TS, SLACK_VECTOR_SIG, SLACK_VECTOR_BODY, moment
        )
    assert not verify_slack(
        SLACK_VECTOR_SECRET, SLACK_VECTOR_TS, SLACK_VECTOR_SIG, SLACK_VECTOR_BODY + b"x", at
    )
    assert not verify_slack(SecretStr("other"), SLACK_VECTOR_TS, SLACK_VECTOR_SIG, SLACK_VECTOR_BODY, at)
    assert not verify_slack(SLACK_VECTOR_SECRET, None, SLACK_VECTOR_SIG, SLACK_VECTOR_BODY, at)
    assert not verify_slack(SLACK_VECTOR_SECRET, "soon", SLACK_VECTOR_SIG, SLACK_VECTOR_BODY, at)


def test_pagerduty_test_vector_and_rotation() -> None:
    assert pagerduty_signature(PD_VECTOR_SECRET, PD_VECTOR_BODY) == PD_VECTOR_SIG
    assert verify_pagerduty([PD_VECTOR_SECRET], PD_VECTOR_SIG, PD_VECTOR_BODY)
    assert verify_pagerduty([PD_VECTOR_SECRET], f"v1=00ff, {PD_VECTOR_SIG}", PD_VECTOR_BODY)
    assert verify_pagerduty([SecretStr("old"), PD_VECTOR_SECRET], PD_VECTOR_SIG, PD_VECTOR_BODY)
    assert not verify_pagerduty([PD_VECTOR_SECRET], PD_VECTOR_SIG.replace("v1=", "v2="), PD_VECTOR_BODY)
    assert not verify_pagerduty([PD_VECTOR_SECRET], PD_VECTOR_SIG, PD_VECTOR_BODY + b" ")
    assert not verify_pagerduty([PD_VECTOR_SECRET], None, PD_VECTOR_BODY)
    assert not verify_pagerduty([], PD_VECTOR_SIG, PD_VECTOR_BODY)


# --- Slack -------------------------------------------------------------------------------------


def slack_body(action_id: str = "ack", value: str = INCIDENT) -> bytes:
    payload = json.loads(
        (FIXTURES / "slack" / "slackapi-bolt-python__block_actions_button_payload.json").read_text()
    )
    payload["actions"][0].update({"action_id": action_id, "value": value})
    return f"payload={quote(json.dumps(payload))}".encode()


def slack_headers(
    body: bytes, *, secret: SecretStr = SLACK_SECRET, at: datetime = NOW
) -> dict[str, str]:
    ts = str(int(at.timestamp()))
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": slack_signature(secret, ts, body),
    }


@pytest.mark.parametrize(
    ("action_id", "action"),
    [("ack", "acknowledge"), ("resolve", "resolve"), ("escalate_manager", "escalate")],
)
async def test_slack_button_publishes_a_command_with_the_user(action_id: str, action: str) -> None:
    publisher = CommandRecorder()
    body = slack_body(action_id)
    async with client(publisher) as http:
        response = await http.post(
            "/callbacks/slack/interactivity", content=body, headers=slack_headers(body)
        )
        again = await http.post(
            "/callbacks/slack/interactivity", content=body, headers=slack_headers(body)
        )
    assert response.status_code == 200
    assert again.status_code == 200
    first, second = publisher.commands
    assert first.action == action
    assert first.incident_id == INCIDENT
    assert (first.actor.via, first.actor.name) == ("slack", "primary-owner")
    assert first.requested_at == NOW
    assert first.to == ("manager" if action == "escalate" else None)
    assert second.command_id == first.command_id  # a redelivered click applies once


async def test_slack_fixture_raw_body_with_foreign_action_is_accepted_and_ignored() -> None:
    publisher = CommandRecorder()
    body = (FIXTURES / "slack" / "slackapi-bolt-python__block_actions_button_raw_body.txt").read_bytes()
    async with client(publisher) as http:
        response = await http.post(
            "/callbacks/slack/interactivity", content=body, headers=slack_headers(body)
        )
    assert response.status_code == 200
    assert publisher.commands == []  # action_id "a" is not ours


@pytest.mark.parametrize(
    "forge",
    [
        "wrong-secret",
        "tampered-body",
        "no-signature",
        "no-timestamp",
        "replayed",
        "from-the-future",
        "timestamp-of-400-digits",  # int -> float overflows
        "timestamp-of-5000-digits",  # int() refuses over 4300 digits
    ],
)
async def test_forged_slack_callbacks_are_refused(forge: str) -> None:
    publisher = CommandRecorder()
    body = slack_body()
    headers = slack_headers(body)
    sent = body
    if forge == "wrong-secret":
        headers = slack_headers(body, secret=SecretStr("not-the-secret"))
    elif forge == "tampered-body":
        sent = slack_body(value="inc_ffffffffffffffff")
    elif forge == "no-signature":
        del headers["x-slack-signature"]
    elif forge == "no-timestamp":
        del headers["x-slack-request-timestamp"]
    elif forge == "replayed":
        headers = slack_headers(body, at=NOW - timedelta(minutes=5, seconds=1))
    elif forge.startswith("timestamp-of-"):
        timestamp = "9" * int(forge.split("-")[2])
        headers["x-slack-request-timestamp"] = timestamp
        headers["x-slack-signature"] = slack_signature(SLACK_SECRET, timestamp, body)
    else:
        headers = slack_headers(body, at=NOW + timedelta(minutes=6))
    async with client(publisher) as http:
        response = await http.post("/callbacks/slack/interactivity", content=sent, headers=headers)
    assert response.status_code == 401
    assert publisher.commands == []
    assert SLACK_SECRET.get_secret_value() not in response.text


async def test_slack_signed_garbage_is_400() -> None:
    publisher = CommandRecorder()
    body = b"payload=%7Bnot-json"
    async with client(publisher) as http:
        response = await http.post(
            "/callbacks/slack/interactivity", content=body, headers=slack_headers(body)
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert publisher.commands == []


# --- PagerDuty ---------------------------------------------------------------------------------


def pd_body(name: str, incident_key: str | None = INCIDENT) -> bytes:
    document = json.loads(
        (FIXTURES / "pagerduty" / f"zulip__pagerduty_webhook_v3_incident_{name}.json").read_text()
    )
    if incident_key is not None:
        document["event"]["data"]["incident_key"] = incident_key
    return json.dumps(document).encode()


def pd_headers(body: bytes, secret: SecretStr = PD_SECRET) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-pagerduty-signature": pagerduty_signature(secret, body),
        "x-webhook-id": "wh-1",
    }


@pytest.mark.parametrize(("name", "action"), [("acknowledged", "acknowledge"), ("resolved", "resolve")])
async def test_pagerduty_webhook_publishes_a_command(name: str, action: str) -> None:
    publisher = CommandRecorder()
    body = pd_body(name)
    async with client(publisher) as http:
        response = await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
    assert response.status_code == 202
    (command,) = publisher.commands
    assert command.action == action
    assert command.incident_id == INCIDENT
    assert (command.actor.via, command.actor.name) == ("pagerduty", "PIG 208")
    assert response.json()["command_id"] == command.command_id


@pytest.mark.parametrize("name", ["acknowledged", "resolved"])
async def test_an_escalation_levels_page_acknowledges_its_incident(name: str) -> None:
    """The secondary answers the page sevflow sent to their own service (dedup_key
    ``<incident>/escalation/secondary``): the incident is acknowledged, so the escalation stops
    before the manager is called. Resolving that page is not resolving the incident."""
    publisher = CommandRecorder()
    body = pd_body(name, incident_key=escalation_key(INCIDENT, "secondary"))
    storm = pd_body("acknowledged", incident_key=storm_key("20260115T143000"))
    async with client(publisher) as http:
        response = await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
        ignored = await http.post("/callbacks/pagerduty", content=storm, headers=pd_headers(storm))
    assert response.status_code == 202
    (command,) = publisher.commands
    assert (command.action, command.incident_id) == ("acknowledge", INCIDENT)
    # Which PagerDuty alert was answered, so the incident's own alert is acknowledged for it.
    assert command.pagerduty_alert == escalation_key(INCIDENT, "secondary")
    assert response.json()["incident_id"] == INCIDENT
    assert (ignored.status_code, ignored.json()["status"]) == (202, "ignored")
    assert "storm" in ignored.json()["reason"]


async def test_pagerduty_events_we_do_not_act_on_are_202_ignored() -> None:
    publisher = CommandRecorder()
    triggered = pd_body("triggered")
    without_key = pd_body("acknowledged", incident_key=None)  # the fixture verbatim
    async with client(publisher) as http:
        first = await http.post("/callbacks/pagerduty", content=triggered, headers=pd_headers(triggered))
        second = await http.post(
            "/callbacks/pagerduty", content=without_key, headers=pd_headers(without_key)
        )
    assert (first.status_code, first.json()["status"]) == (202, "ignored")
    assert (second.status_code, second.json()["status"]) == (202, "ignored")
    assert "incident_key" in second.json()["reason"]
    assert publisher.commands == []


@pytest.mark.parametrize("forge", ["wrong-secret", "tampered", "missing", "other-version"])
async def test_forged_pagerduty_webhooks_are_refused(forge: str) -> None:
    publisher = CommandRecorder()
    body = pd_body("resolved")
    headers = pd_headers(body)
    sent = body
    if forge == "wrong-secret":
        headers = pd_headers(body, SecretStr("not-the-secret"))
    elif forge == "tampered":
        sent = pd_body("resolved", incident_key="inc_ffffffffffffffff")
    elif forge == "missing":
        del headers["x-pagerduty-signature"]
    else:
        digest = hmac.new(PD_SECRET.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
        headers["x-pagerduty-signature"] = f"v0={digest}"
    async with client(publisher) as http:
        response = await http.post("/callbacks/pagerduty", content=sent, headers=headers)
    assert response.status_code == 401
    assert publisher.commands == []


# --- the HTTP API ------------------------------------------------------------------------------


async def test_api_ack_and_resolve_with_a_token() -> None:
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    async with client(publisher) as http:
        ack = await http.post(f"/api/incidents/{INCIDENT}/ack", json={"by": "alice"}, headers=auth)
        resolve = await http.post(f"/api/incidents/{INCIDENT}/resolve", headers=auth)
    assert ack.status_code == 202
    assert ack.json() == {
        "status": "accepted",
        "command_id": publisher.commands[0].command_id,
        "incident_id": INCIDENT,
        "action": "acknowledge",
    }
    assert resolve.status_code == 202
    # The token's name acts; "by" is only a note beside it.
    assert [(c.action, c.actor.via, c.actor.name, c.actor.note) for c in publisher.commands] == [
        ("acknowledge", "api", "ops", "alice"),
        ("resolve", "api", "ops", None),
    ]


async def test_api_resolve_records_the_playbooks_closing_details() -> None:
    """Root cause, fix and follow-up travel with the resolution (the closing message's fields);
    they are refused on an acknowledgement, when not text, or when too long."""
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    details = {
        "root_cause": "Database connection pool exhaustion due to slow query",
        "fix": "Optimized query and increased pool size",
        "follow_up": "[JIRA-123] Add query performance monitoring",
    }
    async with client(publisher) as http:
        resolved = await http.post(
            f"/api/incidents/{INCIDENT}/resolve", json={"by": "alice", **details}, headers=auth
        )
        on_ack = await http.post(
            f"/api/incidents/{INCIDENT}/ack", json={"root_cause": "x"}, headers=auth
        )
        not_text = await http.post(f"/api/incidents/{INCIDENT}/resolve", json={"fix": 5}, headers=auth)
        too_long = await http.post(
            f"/api/incidents/{INCIDENT}/resolve", json={"follow_up": "x" * 1001}, headers=auth
        )
    assert resolved.status_code == 202
    (command,) = publisher.commands
    assert command.details() == details
    assert (on_ack.status_code, on_ack.json()["error"]) == (422, "invalid_body")
    assert "belongs to a resolution" in on_ack.json()["message"]
    assert (not_text.status_code, not_text.json()["message"]) == (422, "fix must be a string")
    assert too_long.status_code == 422
    assert "1000 characters" in too_long.json()["message"]


async def test_api_idempotency_key_gives_a_stable_command_id() -> None:
    publisher = CommandRecorder()
    headers = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}", "idempotency-key": "k-1"}
    async with client(publisher) as http:
        for _ in range(2):
            assert (
                await http.post(f"/api/incidents/{INCIDENT}/ack", headers=headers)
            ).status_code == 202
    first, second = publisher.commands
    assert first.command_id == second.command_id


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Basic YTpi", f"Bearer {API_TOKEN.get_secret_value()}x"]
)
async def test_api_without_a_valid_token_is_401(authorization: str | None) -> None:
    publisher = CommandRecorder()
    headers = {"authorization": authorization} if authorization else {}
    async with client(publisher) as http:
        response = await http.post(f"/api/incidents/{INCIDENT}/ack", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert publisher.commands == []


async def test_api_with_no_token_configured_refuses_everyone() -> None:
    publisher = CommandRecorder()
    async with client(publisher, api_tokens=[]) as http:
        response = await http.post(
            f"/api/incidents/{INCIDENT}/ack", headers={"authorization": "Bearer "}
        )
    assert response.status_code == 401
    assert publisher.commands == []


async def test_api_refuses_bad_ids_and_bodies() -> None:
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    async with client(publisher) as http:
        bad_id = await http.post("/api/incidents/inc%20x%27;--/ack", headers=auth)
        bad_json = await http.post(f"/api/incidents/{INCIDENT}/ack", content=b"{", headers=auth)
        bad_by = await http.post(f"/api/incidents/{INCIDENT}/ack", json={"by": 5}, headers=auth)
        huge = await http.post(f"/api/incidents/{INCIDENT}/ack", content=b"x" * 300_000, headers=auth)
    assert (bad_id.status_code, bad_id.json()["error"]) == (422, "invalid_incident_id")
    assert (bad_json.status_code, bad_json.json()["error"]) == (400, "invalid_json")
    assert bad_by.status_code == 422
    assert huge.status_code == 413
    assert publisher.commands == []


async def test_kafka_down_is_503_with_retry_after_everywhere() -> None:
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    slack = slack_body()
    pd = pd_body("acknowledged")
    async with client(DownPublisher()) as http:
        responses = [
            await http.post(f"/api/incidents/{INCIDENT}/ack", headers=auth),
            await http.post(
                "/callbacks/slack/interactivity", content=slack, headers=slack_headers(slack)
            ),
            await http.post("/callbacks/pagerduty", content=pd, headers=pd_headers(pd)),
        ]
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert all(r.headers["retry-after"] == "5" for r in responses)


async def test_routes_from_settings_serve_only_configured_callbacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    monkeypatch.setenv("SEVFLOW_WEBHOOK_TOKENS", "webhook-token")
    settings = Settings()
    publisher = CommandRecorder()
    routes = routes_from_settings(settings, publisher, clock=lambda: NOW)
    app = Starlette(routes=protect_all(routes, receiver_credentials(settings)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sevflow.test") as http:
        slack = await http.post("/callbacks/slack/interactivity", content=b"payload=%7B%7D")
        pd = await http.post("/callbacks/pagerduty", content=b"{}")
        api = await http.post(
            f"/api/incidents/{INCIDENT}/ack", headers={"authorization": "Bearer webhook-token"}
        )
    assert (slack.status_code, pd.status_code) == (404, 404)
    # The webhook token no longer opens the API (it did when SEVFLOW_API_TOKENS was unset).
    assert (api.status_code, api.json()["scope"]) == (403, "write")
    assert "webhook-token" not in api.text
    assert "webhook-token" not in repr(settings)


EMPTY_KEYS = [SecretStr(""), SecretStr("  ")]


@pytest.mark.parametrize("blank", EMPTY_KEYS, ids=["empty", "blank"])
async def test_an_empty_secret_or_token_lets_nobody_in(blank: SecretStr) -> None:
    """An HMAC under an empty key is one anyone can compute, and an empty token matches a header
    that carries none: neither may open a route."""
    publisher = CommandRecorder()
    slack = slack_body("resolve")
    pd = pd_body("resolved")
    async with client(
        publisher, api_tokens=[blank], slack_signing_secret=blank, pagerduty_secrets=[blank]
    ) as http:
        slack_answer = await http.post(
            "/callbacks/slack/interactivity", content=slack, headers=slack_headers(slack, secret=blank)
        )
        pd_answer = await http.post("/callbacks/pagerduty", content=pd, headers=pd_headers(pd, blank))
        api_answers = [
            await http.post(f"/api/incidents/{INCIDENT}/resolve", headers={"authorization": header})
            for header in ("Bearer ", "Bearer", f"Bearer {blank.get_secret_value()}")
        ]
    assert (slack_answer.status_code, pd_answer.status_code) == (404, 404)  # not served
    assert [a.status_code for a in api_answers] == [401, 401, 401]
    assert publisher.commands == []
    ts = str(int(NOW.timestamp()))
    assert not verify_slack(blank, ts, slack_signature(blank, ts, slack), slack, NOW)
    assert not verify_pagerduty([blank], pagerduty_signature(blank, pd), pd)


async def test_an_empty_pagerduty_secret_beside_a_real_one_signs_nothing() -> None:
    publisher = CommandRecorder()
    body = pd_body("resolved")
    async with client(publisher, pagerduty_secrets=[SecretStr(""), PD_SECRET]) as http:
        forged = await http.post(
            "/callbacks/pagerduty", content=body, headers=pd_headers(body, SecretStr(""))
        )
        signed = await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
    assert (forged.status_code, signed.status_code) == (401, 202)
    assert len(publisher.commands) == 1


async def test_an_empty_slack_secret_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"SEVFLOW_{name.upper()}", raising=False)
    monkeypatch.setenv("SEVFLOW_WEBHOOK_TOKENS", "webhook-token")
    monkeypatch.setenv("SEVFLOW_SLACK_SIGNING_SECRET", "")
    settings = Settings()
    assert settings.slack_signing_secret is None
    publisher = CommandRecorder()
    body = slack_body("resolve")
    app = Starlette(routes=routes_from_settings(settings, publisher, clock=lambda: NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sevflow.test") as http:
        response = await http.post(
            "/callbacks/slack/interactivity",
            content=body,
            headers=slack_headers(body, secret=SecretStr("")),
        )
    assert response.status_code == 404
    assert publisher.commands == []


def test_blank_credentials_given_as_lists_are_dropped() -> None:
    settings = Settings(
        webhook_tokens=["", " ", "webhook-token"],
        webhook_basic_auth=[SecretStr(""), "am:pass"],
        pagerduty_webhook_secrets=["", "pd-secret"],
        pagerduty_account_subdomain="pig208",
        slack_signing_secret=" ",
    )
    assert [t.get_secret_value() for t in settings.webhook_tokens] == ["webhook-token"]
    assert [t.get_secret_value() for t in settings.webhook_basic_auth] == ["am:pass"]
    assert [t.get_secret_value() for t in settings.pagerduty_webhook_secrets] == ["pd-secret"]
    assert settings.slack_signing_secret is None


FORGED_LINE = (
    "eve\nERROR receiver.callbacks api: resolve inc_ffffffffffffffff by api/admin\r\u2028\u202e"
)


async def test_a_callers_name_cannot_write_its_own_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """``by``, a Slack user name and a PagerDuty agent's summary are the caller's words: a line
    break in them must not start a forged line in the log (nor reach the incident's record)."""
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    payload = json.loads(
        (FIXTURES / "slack" / "slackapi-bolt-python__block_actions_button_payload.json").read_text()
    )
    payload["user"]["username"] = FORGED_LINE
    payload["actions"][0].update({"action_id": "ack", "value": INCIDENT})
    slack = f"payload={quote(json.dumps(payload))}".encode()
    document = json.loads(pd_body("acknowledged"))
    document["event"]["agent"]["summary"] = FORGED_LINE
    pd = json.dumps(document).encode()
    caplog.set_level("INFO", logger="receiver.callbacks")
    async with client(publisher) as http:
        api = await http.post(f"/api/incidents/{INCIDENT}/ack", json={"by": FORGED_LINE}, headers=auth)
        slack_answer = await http.post(
            "/callbacks/slack/interactivity", content=slack, headers=slack_headers(slack)
        )
        pd_answer = await http.post("/callbacks/pagerduty", content=pd, headers=pd_headers(pd))
    assert (api.status_code, slack_answer.status_code, pd_answer.status_code) == (202, 200, 202)
    forged = "eve ERROR receiver.callbacks api: resolve inc_ffffffffffffffff by api/admin"
    names = [c.actor.name or c.actor.note for c in publisher.commands]
    assert names == ["ops", forged, forged]
    assert publisher.commands[0].actor.note == forged
    lines = [r.getMessage() for r in caplog.records if r.name == "receiver.callbacks"]
    assert len(lines) == 3
    assert all(line.isprintable() for line in lines)


async def test_json_nested_deeper_than_the_stack_is_400_everywhere() -> None:
    """json.loads raises RecursionError (not ValueError) on such a body: it was a 500."""
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    deep = b"[" * 200_000
    slack = b"payload=" + deep
    async with client(publisher) as http:
        answers = [
            await http.post(f"/api/incidents/{INCIDENT}/ack", content=deep, headers=auth),
            await http.post(
                "/callbacks/slack/interactivity", content=slack, headers=slack_headers(slack)
            ),
            await http.post("/callbacks/pagerduty", content=deep, headers=pd_headers(deep)),
        ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert publisher.commands == []


@pytest.mark.parametrize(
    ("value", "episode"), [(f"{INCIDENT}@3", 3), (INCIDENT, None), (f"{INCIDENT}@x", "none")]
)
async def test_a_slack_button_names_the_episode_it_was_shown_for(value: str, episode: object) -> None:
    """Buttons carry ``<id>@<flaps>`` (a bare id on older messages); a malformed episode acts on
    nothing."""
    publisher = CommandRecorder()
    body = slack_body("resolve", value)
    async with client(publisher) as http:
        response = await http.post(
            "/callbacks/slack/interactivity", content=body, headers=slack_headers(body)
        )
    assert response.status_code == 200
    if episode == "none":
        assert publisher.commands == []
        return
    (command,) = publisher.commands
    assert (command.incident_id, command.episode) == (INCIDENT, episode)


async def test_an_api_command_may_name_its_episode() -> None:
    publisher = CommandRecorder()
    async with client(publisher) as http:
        named = await http.post(
            f"/api/incidents/{INCIDENT}/resolve",
            headers={"authorization": f"Bearer {API_TOKEN.get_secret_value()}"},
            json={"episode": 2},
        )
        bad = await http.post(
            f"/api/incidents/{INCIDENT}/resolve",
            headers={"authorization": f"Bearer {API_TOKEN.get_secret_value()}"},
            json={"episode": -1},
        )
    assert named.status_code == 202
    assert bad.status_code == 422
    (command,) = publisher.commands
    assert command.episode == 2


async def test_a_pagerduty_resolve_by_no_user_is_sevflows_own_echo_and_ignored() -> None:
    """sevflow resolves its incidents in PagerDuty through the Events API; PagerDuty's webhook of
    that resolve names no user. Taken as an operator's resolve, it could arrive after the incident
    reopened and close the new episode."""
    publisher = CommandRecorder()
    document = json.loads(pd_body("resolved"))
    document["event"]["agent"] = {"id": "PINTEG1", "type": "inbound_integration_reference"}
    integration = json.dumps(document).encode()
    document["event"]["agent"] = None
    nobody = json.dumps(document).encode()
    async with client(publisher) as http:
        for body in (integration, nobody):
            response = await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
            assert (response.status_code, response.json()["status"]) == (202, "ignored")
    assert publisher.commands == []


async def test_a_retried_pagerduty_webhook_keeps_the_time_it_happened() -> None:
    """PagerDuty repeats ``occurred_at`` on every retry: a resolve retried after the incident
    reopened is still dated before the reopen (and refused by the worker)."""
    publisher = CommandRecorder()
    body = pd_body("resolved")
    async with client(publisher) as http:
        await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
    (command,) = publisher.commands
    assert command.requested_at == datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC)
    assert command.requested_at != NOW


@pytest.mark.parametrize(
    "occurred_at", ["0001-01-01T00:00:00+14:00", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
)
async def test_a_pagerduty_time_out_of_range_is_the_receivers_clock_not_a_500(occurred_at: str) -> None:
    """Year 1 at +14:00 overflowed into UTC, and 1900 failed the command's validation: a 500."""
    publisher = CommandRecorder()
    document = json.loads(pd_body("resolved"))
    document["event"]["occurred_at"] = occurred_at
    body = json.dumps(document).encode()
    async with client(publisher) as http:
        response = await http.post("/callbacks/pagerduty", content=body, headers=pd_headers(body))
    assert response.status_code == 202, response.text
    (command,) = publisher.commands
    assert command.requested_at == NOW


async def test_api_escalates_to_the_manager_and_names_whom() -> None:
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    path = f"/api/incidents/{INCIDENT}/escalate"
    async with client(publisher) as http:
        escalated = await http.post(path, json={"to": "manager", "by": "alice"}, headers=auth)
        nobody = await http.post(path, headers=auth)
        someone_else = await http.post(path, json={"to": "ceo"}, headers=auth)
        on_ack = await http.post(f"/api/incidents/{INCIDENT}/ack", json={"to": "manager"}, headers=auth)
        unsigned = await http.post(path, json={"to": "manager"})
    assert escalated.status_code == 202
    assert escalated.json()["action"] == "escalate"
    # The token's name acts; the body's "by" is only a note beside it.
    assert [(c.action, c.to, c.actor.name, c.actor.note) for c in publisher.commands] == [
        ("escalate", "manager", "ops", "alice")
    ]
    for refused in (nobody, someone_else, on_ack):
        assert refused.status_code == 422
        assert refused.json()["error"] == "invalid_body"
    assert unsigned.status_code == 401


async def test_json_with_a_lone_surrogate_is_refused_by_name_everywhere() -> None:
    """``json.loads`` reads a ``\\ud800`` escape as a string no UTF-8 text can hold: published in a
    command it failed there (500), or further on. Each endpoint refuses it, naming where."""
    publisher = CommandRecorder()
    auth = {"authorization": f"Bearer {API_TOKEN.get_secret_value()}"}
    slack_payload = json.loads(
        (FIXTURES / "slack" / "slackapi-bolt-python__block_actions_button_payload.json").read_text()
    )
    slack_payload["actions"][0].update({"action_id": "ack", "value": INCIDENT})
    slack_payload["user"]["name"] = "x\ud800"
    slack = f"payload={quote(json.dumps(slack_payload))}".encode()
    pagerduty = json.loads(pd_body("acknowledged"))
    pagerduty["event"]["agent"]["summary"] = "\udc00"
    pd = json.dumps(pagerduty).encode()
    async with client(publisher) as http:
        answers = {
            "api by": await http.post(
                f"/api/incidents/{INCIDENT}/ack", content=b'{"by": "x\\ud800"}', headers=auth
            ),
            "api note": await http.post(
                f"/api/incidents/{INCIDENT}/notes", content=b'{"text": "\\udfff"}', headers=auth
            ),
            "slack": await http.post(
                "/callbacks/slack/interactivity", content=slack, headers=slack_headers(slack)
            ),
            "pagerduty": await http.post("/callbacks/pagerduty", content=pd, headers=pd_headers(pd)),
        }
    where = {
        "api by": "by",
        "api note": "text",
        "slack": "user.name",
        "pagerduty": "event.agent.summary",
    }
    for name, response in answers.items():
        assert response.status_code == 400, (name, response.text)
        assert f"lone surrogate in {where[name]}" in response.json()["message"], name
    assert publisher.commands == []
