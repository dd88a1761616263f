"""``sevflow statuspage publish`` and ``POST /api/incidents/{id}/statuspage/publish``: a held
security incident is shown as held to operators, and published only with the operator's words,
through the commands topic and the worker's pipeline (receiver/statuspage_api.py,
sevflow/commands/statuspage.py)."""

import asyncio
import getpass
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from analytics.incidents import load_incident
from analytics.text import render_detail, render_incidents
from models.events import EventType
from models.incident import LifecyclePolicy
from models.settings import Settings
from receiver.access import protect_all
from receiver.incident_api import incident_routes
from receiver.statuspage_api import publish_route
from sevflow.commands import statuspage as statuspage_cli
from store.db import async_engine, sync_engine
from store.incidents import IncidentStore
from store.schema import metadata
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, CommandRecorder, alert, api_credentials

TOKEN = "api-token-0123456789"
BREACH = "Exfiltration of customer PII from db-prod-3 (3,200 rows)"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOGIN = getpass.getuser()


async def store_with_incidents(url: str) -> dict[str, str]:
    """A data breach and an ordinary incident in a new store: kind -> id."""
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    aengine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(aengine), load_rules(None), LifecyclePolicy())
        breach = await pipeline.process_alerts(
            [alert("CustomerDataExfiltration", annotations={"summary": BREACH}, service="checkout")]
        )
        plain = await pipeline.process_alerts([alert("ApiDown", severity="sev1", service="api")])
    finally:
        await aengine.dispose()
    return {"breach": breach[0].incident_id, "plain": plain[0].incident_id}


async def apply(url: str, recorder: CommandRecorder) -> list[EventType]:
    """What the worker does with the commands queued: the events it emits."""
    aengine = async_engine(url)
    try:
        pipeline = Pipeline(IncidentStore(aengine), load_rules(None), LifecyclePolicy())
        emitted: list[EventType] = []
        for command in recorder.commands:
            result = await pipeline.process_command(command)
            emitted += [e.type for e in result.events]
        return emitted
    finally:
        await aengine.dispose()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], CommandRecorder, str]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = asyncio.run(store_with_incidents(url))
    engine = async_engine(url)
    recorder = CommandRecorder()
    routes = [*incident_routes(engine), publish_route(engine, recorder, clock=lambda: T0)]
    credentials = api_credentials(TOKEN, scopes="read,admin")
    with TestClient(Starlette(routes=protect_all(routes, credentials))) as client:
        yield client, ids, recorder, url
        client.portal.call(engine.dispose)


def test_the_api_shows_a_breach_held_and_publishes_it_with_the_operators_words(
    api: tuple[TestClient, dict[str, str], CommandRecorder, str],
) -> None:
    client, ids, recorder, url = api
    shown = client.get(f"/api/incidents/{ids['breach']}", headers=AUTH).json()["incident"]
    assert (shown["data_breach"], shown["held_from_status_page"]) == (True, True)
    plain = client.get(f"/api/incidents/{ids['plain']}", headers=AUTH).json()["incident"]
    assert plain["held_from_status_page"] is False

    path = f"/api/incidents/{ids['breach']}/statuspage/publish"
    words = {"title": "Checkout issue", "body": "We are investigating an issue with checkout."}
    assert client.post(path, json=words).status_code == 401
    assert client.post(path, json={"title": "x"}, headers=AUTH).status_code == 422
    missing = client.post(
        "/api/incidents/inc_ffffffffffffffff/statuspage/publish", json=words, headers=AUTH
    )
    assert missing.status_code == 404
    first = client.post(path, json=words, headers=AUTH)
    again = client.post(path, json=words, headers=AUTH)  # a retry before the worker applied it
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["command_id"] == again.json()["command_id"]
    assert asyncio.run(apply(url, recorder)) == [EventType.STATUSPAGE_PUBLISHED]  # applied once

    shown = client.get(f"/api/incidents/{ids['breach']}", headers=AUTH).json()["incident"]
    assert (shown["held_from_status_page"], shown["status_page_title"]) == (False, "Checkout issue")
    unchanged = client.post(path, json=words, headers=AUTH)
    assert (unchanged.status_code, unchanged.json()["status"]) == (200, "unchanged")


def test_going_back_to_earlier_words_is_published_again(
    api: tuple[TestClient, dict[str, str], CommandRecorder, str],
) -> None:
    """Words A, then B, then A again: the command's id was made of the words alone, so the
    second A had the first one's id, was answered 202 and dropped by the worker as done, and
    the page went on showing B."""
    client, ids, recorder, url = api
    path = f"/api/incidents/{ids['breach']}/statuspage/publish"
    first, second = (
        {"title": "Checkout issue", "body": "We are investigating."},
        {"title": "Checkout issue found", "body": "We have found the cause."},
    )
    applied = []
    for words in (first, second, first):
        assert client.post(path, json=words, headers=AUTH).status_code == 202
        applied += asyncio.run(apply(url, recorder))
    assert applied == [EventType.STATUSPAGE_PUBLISHED] * 3
    shown = client.get(f"/api/incidents/{ids['breach']}", headers=AUTH).json()["incident"]
    assert shown["status_page_title"] == "Checkout issue"


def test_the_cli_lists_a_held_incident_and_publishes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = asyncio.run(store_with_incidents(url))
    settings = Settings(database_url=url)

    async def read(incident_id: str) -> tuple[str, str]:
        engine = async_engine(url)
        try:
            detail = await load_incident(engine, incident_id)
            assert detail is not None
            return render_incidents([detail.incident]), render_detail(detail)
        finally:
            await engine.dispose()

    listed, shown = asyncio.run(read(ids["breach"]))
    assert f"{BREACH} (held from the status page)" in listed
    assert (
        "Status page:  held from the status page: publish with "
        f"`sevflow statuspage publish {ids['breach']}" in shown
    )
    listed, _ = asyncio.run(read(ids["plain"]))
    assert "held" not in listed

    recorder = CommandRecorder()
    out, err = io.StringIO(), io.StringIO()
    missing = statuspage_cli.publish(
        settings, "inc_ffffffffffffffff", "T", "B", by="dave", out=out, err=err, publisher=recorder
    )
    assert (missing, err.getvalue()) == (
        1,
        "sevflow statuspage publish: no incident inc_ffffffffffffffff\n",
    )
    code = statuspage_cli.publish(
        settings,
        ids["breach"],
        "Checkout issue",
        "We are on it.",
        by="dave",
        out=out,
        publisher=recorder,
    )
    assert code == 0
    (command,) = recorder.commands
    assert (command.action, command.public_title, command.public_body) == (
        "publish",
        "Checkout issue",
        "We are on it.",
    )
    assert (command.actor.via, command.actor.name, command.actor.note) == ("cli", LOGIN, "dave")
    assert asyncio.run(apply(url, recorder)) == [EventType.STATUSPAGE_PUBLISHED]
    listed, shown = asyncio.run(read(ids["breach"]))
    assert "held" not in listed
    assert f"Status page:  published by {LOGIN} at " in shown
    assert '"Checkout issue"' in shown
    again = statuspage_cli.publish(
        settings,
        ids["breach"],
        "Checkout issue",
        "We are on it.",
        by="dave",
        out=out,
        publisher=recorder,
    )
    assert again == 0
    assert len(recorder.commands) == 1  # published with these words already: nothing queued
    assert "published with these words already" in out.getvalue()


def test_the_cli_refuses_empty_words() -> None:
    from sevflow.cli import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(
            ["statuspage", "publish", "inc_0123456789abcdef", "--title", " ", "--body", "b"]
        )
    args = _parser().parse_args(
        ["statuspage", "publish", "inc_0123456789abcdef", "--title", "T", "--body", "B"]
    )
    assert (args.command, args.statuspage_command, args.title, args.body) == (
        "statuspage",
        "publish",
        "T",
        "B",
    )


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        (
            {"title": "Checkout\x00 issue", "body": "b"},
            "title: must not hold the control character U+0000",
        ),
        ({"title": "Checkout\nissue", "body": "b"}, "title: must not hold the control character U+000A"),
        ({"title": "T", "body": "We are\x00 on it"}, "body: must not hold the control character U+0000"),
        ({"title": "T", "body": "bell\x07"}, "body: must not hold the control character U+0007"),
        (
            {"title": "T", "body": "B", "titel": "x"},
            "unknown field(s) 'titel': this request takes body, by, title",
        ),
    ],
)
def test_control_characters_in_the_public_words_are_refused_by_name(
    api: tuple[TestClient, dict[str, str], CommandRecorder, str],
    words: dict[str, str],
    problem: str,
) -> None:
    """U+0000 in a title was taken, stored and served on the public page (PostgreSQL cannot
    store it at all); the API refuses it and every control character but a text's line breaks
    and tabs, naming it, and so does the CLI."""
    from sevflow.cli import _parser

    client, ids, recorder, _ = api
    path = f"/api/incidents/{ids['breach']}/statuspage/publish"
    refused = client.post(path, json=words, headers=AUTH)
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_body")
    assert refused.json()["message"] == problem
    assert not recorder.commands
    if "titel" not in words:  # (the CLI has no such option to misspell)
        with pytest.raises(SystemExit):
            _parser().parse_args(["statuspage", "publish", ids["breach"], "--title", words["title"],
                                  "--body", words["body"]])  # fmt: skip
    lines = {"title": "T", "body": "We are on it.\n\tMore soon."}
    assert client.post(path, json=lines, headers=AUTH).status_code == 202


#: A note that would write a line of its own into a log and reverse what follows it on screen.
FORGED_NOTE = "dave\n2026-01-15 INFO resolved by admin\u202e\u200bevil\x07"
CLEAN_NOTE = "dave 2026-01-15 INFO resolved by admin evil"


def test_the_api_cleans_the_publish_note_of_control_and_format_characters(
    api: tuple[TestClient, dict[str, str], CommandRecorder, str],
) -> None:
    client, ids, recorder, _ = api
    words = {"title": "Checkout issue", "body": "We are on it.", "by": FORGED_NOTE}
    path = f"/api/incidents/{ids['breach']}/statuspage/publish"
    assert client.post(path, json=words, headers=AUTH).status_code == 202
    (command,) = recorder.commands
    assert command.actor.note == CLEAN_NOTE
    blank = {"title": "Checkout issue", "body": "Other words.", "by": "\u202e\n\u200b"}
    assert client.post(path, json=blank, headers=AUTH).status_code == 202
    assert recorder.commands[-1].actor.note is None


def test_the_cli_cleans_the_publish_note_of_control_and_format_characters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = asyncio.run(store_with_incidents(url))
    recorder = CommandRecorder()
    code = statuspage_cli.publish(
        Settings(database_url=url),
        ids["breach"],
        "Checkout issue",
        "We are on it.",
        by=FORGED_NOTE,
        out=io.StringIO(),
        publisher=recorder,
    )
    assert code == 0
    (command,) = recorder.commands
    assert (command.actor.name, command.actor.note) == (LOGIN, CLEAN_NOTE)
