"""``POST /api/incidents/{id}/notes`` as the receiver serves it: behind the write scope and the
incident check, onto the commands topic (tests.builders.CommandRecorder records what Kafka would
take)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.testclient import TestClient

from models.access import ApiToken, Scope
from receiver.access import Credentials, protect_all
from receiver.callbacks import callback_routes
from receiver.incident_api import incident_routes
from store.db import async_engine
from tests.builders import CommandRecorder, api_credentials
from tests.unit.test_escalation_cli import incidents_in_every_state
from tests.unit.test_incident_api import AUTH, TOKEN


@pytest.fixture
def notes_api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], CommandRecorder]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    by_state = asyncio.run(incidents_in_every_state(url))
    engine = async_engine(url)
    publisher = CommandRecorder()
    commands = [r for r in callback_routes(publisher) if r.path.startswith("/api/")]
    app = Starlette(
        routes=protect_all(incident_routes(engine, commands=commands), api_credentials(TOKEN))
    )
    with TestClient(app) as client:
        yield client, by_state, publisher
        client.portal.call(engine.dispose)


def test_a_note_is_queued_once_per_idempotency_key_with_the_token_as_author(
    notes_api: tuple[TestClient, dict[str, str], CommandRecorder],
) -> None:
    client, by_state, publisher = notes_api
    path = f"/api/incidents/{by_state['resolved']}/notes"  # a resolved incident takes notes
    headers = {**AUTH, "Idempotency-Key": "k1"}
    first = client.post(path, headers=headers, json={"text": "root cause:\nDNS", "by": "bob"})
    retry = client.post(path, headers=headers, json={"text": "root cause:\nDNS", "by": "bob"})
    assert (first.status_code, retry.status_code) == (202, 202)
    assert first.json()["action"] == "note"
    one, two = publisher.commands
    assert one.command_id == two.command_id  # the worker applies it once
    assert (one.action, one.text, one.episode) == ("note", "root cause: DNS", 0)
    assert (one.actor.via, one.actor.note) == ("api", "bob")
    assert one.actor.name  # the token's name, not the body's


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"text": " \n\t"}, 422),
        ({"text": "x" * 2001}, 422),
        ({"text": 5}, 422),
        ({"text": "ok", "episode": -1}, 422),
    ],
)
def test_a_bad_note_is_refused_naming_the_problem(
    notes_api: tuple[TestClient, dict[str, str], CommandRecorder], body: dict[str, object], status: int
) -> None:
    client, by_state, publisher = notes_api
    response = client.post(f"/api/incidents/{by_state['triggered']}/notes", headers=AUTH, json=body)
    assert response.status_code == status
    assert response.json()["error"] == "invalid_body"
    assert publisher.commands == []


def test_notes_need_the_write_scope_and_an_incident(
    notes_api: tuple[TestClient, dict[str, str], CommandRecorder],
) -> None:
    client, _, publisher = notes_api
    assert (
        client.post("/api/incidents/inc_ffffffffffffffff/notes", json={"text": "x"}).status_code == 401
    )
    missing = client.post("/api/incidents/inc_ffffffffffffffff/notes", headers=AUTH, json={"text": "x"})
    assert missing.status_code == 404
    assert publisher.commands == []


def test_an_idempotency_key_is_the_same_command_only_for_the_same_caller_and_body(
    tmp_path: Path,
) -> None:
    """The key alone made the command's id: a second note under a key already used, with other
    text or from another token, was answered 202 and dropped by the worker as the first one's
    repeat, so one caller could suppress another's note (or resolve, or escalation)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    incident_id = asyncio.run(incidents_in_every_state(url))["triggered"]
    engine = async_engine(url)
    publisher = CommandRecorder()
    commands = [r for r in callback_routes(publisher) if r.path.startswith("/api/")]
    tokens = Credentials(
        [
            ApiToken(name=name, scopes=frozenset({Scope.READ, Scope.WRITE}), secret=SecretStr(name))
            for name in ("alice-token", "mallory-token")
        ]
    )
    app = Starlette(routes=protect_all(incident_routes(engine, commands=commands), tokens))
    with TestClient(app) as client:
        for token, text in (("alice-token", "a"), ("alice-token", "a"), ("alice-token", "b"),
                            ("mallory-token", "a")):  # fmt: skip
            headers = {"authorization": f"Bearer {token}", "Idempotency-Key": "k1"}
            sent = client.post(
                f"/api/incidents/{incident_id}/notes", headers=headers, json={"text": text}
            )
            assert sent.status_code == 202
        for token in ("alice-token", "mallory-token"):
            headers = {"authorization": f"Bearer {token}", "Idempotency-Key": "k2"}
            assert client.post(f"/api/incidents/{incident_id}/ack", headers=headers).status_code == 202
        client.portal.call(engine.dispose)
    first, retry, other_text, other_caller, ack, other_ack = publisher.commands
    assert first.command_id == retry.command_id
    assert len({first.command_id, other_text.command_id, other_caller.command_id}) == 3
    assert ack.command_id != other_ack.command_id


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("notes", {"text": "looking", "episdoe": 0}, "'episdoe'"),
        ("notes", {"text": "looking", "root_cause": "dns"}, "'root_cause'"),
        ("ack", {"by": "bob", "episdoe": 3}, "'episdoe'"),
        ("resolve", {"rootcause": "dns"}, "'rootcause'"),
    ],
)
def test_a_field_a_command_does_not_take_is_refused_by_name(
    notes_api: tuple[TestClient, dict[str, str], CommandRecorder],
    path: str,
    body: dict[str, object],
    named: str,
) -> None:
    """A misspelt ``episode`` was ignored, and the command acted on the current episode; a
    resolution's ``root_cause`` sent with a note was dropped without a word."""
    client, by_state, publisher = notes_api
    refused = client.post(f"/api/incidents/{by_state['triggered']}/{path}", headers=AUTH, json=body)
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_body")
    assert refused.json()["message"].startswith(f"unknown field(s) {named}")
    assert publisher.commands == []
