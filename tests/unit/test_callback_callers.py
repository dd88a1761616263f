"""Who may act through the callbacks, through real HTTP: sevflow's callback routes on a uvicorn
server on loopback, Slack's users.info / usergroups.users.list / response URLs on the fake Slack.

A Slack button pressed by someone outside the configured workspace (another workspace, a Slack
Connect user, an org-wide install), by a guest, or by a non-member of the allowed user group is
refused with an ephemeral message and publishes no command; a PagerDuty webhook of another account
is answered 202 ignored and publishes nothing.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from receiver.callbacks import (
    PAGERDUTY_PATH,
    SLACK_PATH,
    callback_routes,
    pagerduty_account,
    pagerduty_signature,
    slack_signature,
)
from receiver.slack_callers import SlackCallers
from testkit.fakes.slack import FakeSlack
from tests.builders import CommandRecorder
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SLACK_SECRET = SecretStr("slack-signing-secret-for-tests")
SLACK_TOKEN = "xoxb-callers-test"
PD_SECRET = SecretStr("pd-webhook-secret-for-tests")
TEAM = "T111"
GROUP = "S0ONCALL"
INCIDENT = "inc_0123456789abcdef"


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(SLACK_TOKEN).start()
    fake.add_user("W111", TEAM)
    fake.add_user("WGUEST", TEAM, is_restricted=True)
    fake.add_user("WSINGLE", TEAM, is_ultra_restricted=True)
    fake.add_user("WOTHER", "T999")
    yield fake
    fake.close()


async def serve(app: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it has no event to await
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await task


class Sevflow:
    def __init__(self, url: str, publisher: CommandRecorder, callers: SlackCallers) -> None:
        self.url = url
        self.publisher = publisher
        self.callers = callers


@pytest.fixture
def clock() -> Seconds:
    return Seconds()


@pytest.fixture(params=[None, GROUP], ids=["workspace", "usergroup"])
async def sevflow(
    request: pytest.FixtureRequest, slack: FakeSlack, clock: Seconds
) -> AsyncIterator[Sevflow]:
    slack.add_usergroup(GROUP, ["W111"])
    callers = SlackCallers(
        SecretStr(SLACK_TOKEN),
        slack.url,
        TEAM,
        allowed_usergroup=request.param,
        cache_seconds=60,
        allow_insecure=True,
        monotonic=clock,
    )
    publisher = CommandRecorder()
    routes = callback_routes(
        publisher,
        slack_signing_secret=SLACK_SECRET,
        slack_callers=callers,
        pagerduty_secrets=[PD_SECRET],
        pagerduty_account="pig208",
        clock=lambda: NOW,
    )
    async for url in serve(Starlette(routes=routes)):
        yield Sevflow(url, publisher, callers)
    await callers.close()


def button(slack: FakeSlack, user: str, user_team: str = TEAM, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        (FIXTURES / "slack" / "slackapi-bolt-python__block_actions_button_payload.json").read_text()
    )
    payload["actions"][0].update({"action_id": "ack", "value": INCIDENT})
    payload["user"].update({"id": user, "team_id": user_team})
    payload["response_url"] = slack.response_url(TEAM)
    payload.update(changes)
    return payload


async def press(sevflow: Sevflow, payload: dict[str, Any]) -> httpx.Response:
    body = f"payload={quote(json.dumps(payload))}".encode()
    ts = str(int(NOW.timestamp()))
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": ts,
        "x-slack-signature": slack_signature(SLACK_SECRET, ts, body),
    }
    async with httpx.AsyncClient(base_url=sevflow.url, timeout=10) as http:
        return await http.post(SLACK_PATH, content=body, headers=headers)


async def test_a_workspace_member_acts(sevflow: Sevflow, slack: FakeSlack) -> None:
    answer = await press(sevflow, button(slack, "W111"))
    assert answer.status_code == 200
    assert [c.action for c in sevflow.publisher.commands] == ["acknowledge"]
    assert slack.responses == []


FOREIGN = {
    "another workspace": lambda s: button(s, "W111", team={"id": "T999", "domain": "other"}),
    "slack connect user": lambda s: button(s, "WOTHER", user_team="T999"),
    "slack connect user claiming our team": lambda s: button(s, "WOTHER"),
    "org-wide install": lambda s: button(s, "W111", is_enterprise_install=True),
    "multi-channel guest": lambda s: button(s, "WGUEST"),
    "single-channel guest": lambda s: button(s, "WSINGLE"),
    "unknown user": lambda s: button(s, "WNOBODY"),
}


@pytest.mark.parametrize("who", sorted(FOREIGN))
async def test_foreign_callers_are_refused_ephemerally(
    sevflow: Sevflow, slack: FakeSlack, who: str
) -> None:
    payload = FOREIGN[who](slack)
    answer = await press(sevflow, payload)
    assert answer.status_code == 200
    assert sevflow.publisher.commands == []
    assert len(slack.responses) == 1
    path, message = slack.responses[0]
    assert payload["response_url"].endswith(path)
    assert message["response_type"] == "ephemeral"
    assert "nothing was done" in message["text"]


async def test_not_in_the_user_group_is_refused_and_membership_is_cached(
    slack: FakeSlack, clock: Seconds
) -> None:
    slack.add_user("W222", TEAM)
    slack.add_usergroup(GROUP, ["W111"])
    callers = SlackCallers(
        SecretStr(SLACK_TOKEN), slack.url, TEAM, allowed_usergroup=GROUP, cache_seconds=60,
        allow_insecure=True, monotonic=clock,
    )  # fmt: skip
    publisher = CommandRecorder()
    routes = callback_routes(
        publisher, slack_signing_secret=SLACK_SECRET, slack_callers=callers, clock=lambda: NOW
    )
    async for url in serve(Starlette(routes=routes)):
        sevflow = Sevflow(url, publisher, callers)
        await press(sevflow, button(slack, "W222"))
        assert publisher.commands == []
        assert "user group" in slack.responses[-1][1]["text"]
        slack.add_usergroup(GROUP, ["W111", "W222"])
        await press(sevflow, button(slack, "W222"))  # still the cached membership
        assert publisher.commands == []
        clock.now += 61
        await press(sevflow, button(slack, "W222"))
        assert [c.action for c in publisher.commands] == ["acknowledge"]
    await callers.close()
    lookups = [m for m, _ in slack.calls if m == "usergroups.users.list"]
    assert len(lookups) == 2


async def test_slack_unreachable_refuses(sevflow: Sevflow, slack: FakeSlack) -> None:
    slack.faults.fail_next(1, 503)
    await press(sevflow, button(slack, "W111"))
    assert sevflow.publisher.commands == []
    assert "try again" in slack.responses[-1][1]["text"]


async def test_a_response_url_elsewhere_is_not_called(sevflow: Sevflow, slack: FakeSlack) -> None:
    payload = button(slack, "WGUEST", response_url="https://attacker.example/collect")
    answer = await press(sevflow, payload)
    assert answer.status_code == 200
    assert sevflow.publisher.commands == []
    assert slack.responses == []


# --- PagerDuty ----------------------------------------------------------------------------------


def pd_event(html_url: str | None) -> bytes:
    document = json.loads(
        (FIXTURES / "pagerduty" / "zulip__pagerduty_webhook_v3_incident_acknowledged.json").read_text()
    )
    data = document["event"]["data"]
    data["incident_key"] = INCIDENT
    if html_url is None:
        data.pop("html_url", None)
    else:
        data["html_url"] = html_url
    return json.dumps(document).encode()


async def post_pd(sevflow: Sevflow, body: bytes) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "x-pagerduty-signature": pagerduty_signature(PD_SECRET, body),
    }
    async with httpx.AsyncClient(base_url=sevflow.url, timeout=10) as http:
        return await http.post(PAGERDUTY_PATH, content=body, headers=headers)


async def test_pagerduty_event_of_the_account_is_applied(sevflow: Sevflow) -> None:
    for url in ("https://pig208.pagerduty.com/incidents/PQ1K5C8", "https://PIG208.eu.pagerduty.com/i/1"):
        answer = await post_pd(sevflow, pd_event(url))
        assert answer.status_code == 202
        assert answer.json()["status"] == "accepted"
    # The same event id twice: one command id, applied once by the worker.
    assert len({c.command_id for c in sevflow.publisher.commands}) == 1
    assert [c.incident_id for c in sevflow.publisher.commands] == [INCIDENT, INCIDENT]


@pytest.mark.parametrize(
    "html_url",
    [
        "https://other.pagerduty.com/incidents/PQ1K5C8",
        "https://pig208.pagerduty.com.evil.example/incidents/1",
        "http://pig208.pagerduty.com/incidents/PQ1K5C8",
        "https://pig208-pagerduty.com/incidents/1",
        None,
    ],
)
async def test_pagerduty_event_of_another_account_is_ignored(
    sevflow: Sevflow, html_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await post_pd(sevflow, pd_event(html_url))
    assert answer.status_code == 202
    assert answer.json()["status"] == "ignored"
    assert sevflow.publisher.commands == []
    assert "another account" in caplog.text


def test_pagerduty_account_parsing() -> None:
    assert pagerduty_account("https://acme.pagerduty.com/incidents/X") == "acme"
    assert pagerduty_account("https://acme.eu.pagerduty.com/incidents/X") == "acme"
    assert pagerduty_account("https://pagerduty.com/incidents/X") is None
    assert pagerduty_account(["https://acme.pagerduty.com"]) is None


# --- start-up -----------------------------------------------------------------------------------


def test_callbacks_without_the_workspace_or_account_refuse_to_start() -> None:
    from pydantic import ValidationError

    from models.settings import Settings
    from tests.unit.test_cli import run_cli

    with pytest.raises(ValidationError, match="SEVFLOW_SLACK_TEAM_ID"):
        Settings(slack_signing_secret="secret", slack_token="xoxb-t")
    with pytest.raises(ValidationError, match="SEVFLOW_SLACK_TOKEN"):
        Settings(slack_signing_secret="secret", slack_team_id="T1")
    with pytest.raises(ValidationError, match="SEVFLOW_PAGERDUTY_ACCOUNT_SUBDOMAIN"):
        Settings(pagerduty_webhook_secrets="pd-secret")
    with pytest.raises(ValidationError, match="subdomain"):
        Settings(pagerduty_webhook_secrets="pd-secret", pagerduty_account_subdomain="acme.pagerduty.com")
    assert (
        Settings(
            slack_signing_secret="secret", slack_token="xoxb-t", slack_team_id="T1"
        ).callback_problem()
        is None
    )
    result = run_cli(
        "receiver",
        env={"PATH": "", "SEVFLOW_SLACK_SIGNING_SECRET": "s", "SEVFLOW_SLACK_TOKEN": "xoxb-t"},
    )
    assert result.returncode != 0
    assert "SEVFLOW_SLACK_TEAM_ID" in result.stderr
    assert "Traceback" not in result.stderr
    assert "xoxb-t" not in result.stderr
