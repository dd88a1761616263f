"""What goes public, through real HTTP: a data breach never reaches Statuspage (the fake) nor the
built-in page (served by sevflow, read with GET) until an operator publishes it through the API,
and then with exactly the operator's words; its Slack channel is private with the security
contacts invited, ``#security-incidents`` gets the channel's name and ``#incidents`` a neutral
announcement; an ordinary incident's public texts hold only the allow-listed words."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from models.escalation import Target
from models.events import IncidentEvent
from models.incident import LifecyclePolicy
from models.settings import Settings
from receiver.access import protect_all
from receiver.statuspage_api import publish_route
from sinks.base import Sink
from sinks.fanout import build_sinks
from sinks.status_server import create_status_app
from store.incidents import IncidentStore
from store.status_page import StatusPageStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.fixtures import records, sink_settings, worker_for
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage
from tests.builders import T0, CommandRecorder, alert, api_credentials

pytestmark = pytest.mark.integration

clock = fixtures.clock
fake_slack = fixtures.fake_slack
fake_statuspage = fixtures.fake_statuspage

TOKEN = "api-token-for-the-publish-route"
SECRET = "sk_live_51HxSECRETsecret0000"
BREACH = "Exfiltration of customer PII from db-prod-3 to 203.0.113.7"
TITLE = "Checkout disruption"
BODY = "We are investigating an issue affecting checkout and will share more when we can."
#: The policy's security contacts: an email (named only), the channel, a user and a user group.
CONTACTS = (
    Target(kind="email", to="security@optimal-build.com", label="Security"),
    Target(kind="slack", to="#security-incidents", label="Security"),
    Target(kind="slack", to="U0SECLEAD1", label="Security lead"),
    Target(kind="slack", to="<!subteam^S0SECTEAM|security-team>", label="Security team"),
)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` on a free port of 127.0.0.1; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it has no event to await
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def deliver(sinks: list[Sink], events: list[IncidentEvent], clock: FakeClock) -> None:
    for sink in sinks:
        worker, dead = worker_for(sink, clock)
        await worker.process(records(events))
        assert dead.letters == [], sink.name


def breach_alert() -> Any:
    return alert(
        "CustomerDataExfiltration",
        annotations={"summary": BREACH, "summary_public": BREACH, "description": SECRET},
        service="checkout",
        api_key=SECRET,
    )


def page_settings(page: str, fake_statuspage: FakeStatuspage, service: str, **extra: Any) -> Settings:
    """Atlassian Statuspage (the fake) or the built-in page, showing ``service`` as a component."""
    if page == "statuspage":
        return sink_settings(
            statuspage=fake_statuspage, statuspage_components={service: "cmpapi000001"}, **extra
        )
    return sink_settings(statuspage_components={service: service.title()}, **extra)


async def public_view(
    page: str, fake_statuspage: FakeStatuspage, http: httpx.AsyncClient, page_url: str
) -> tuple[list[tuple[str, list[str]]], str]:
    """The public incidents as ``(name, update bodies)``, and everything the page shows as text."""
    if page == "statuspage":
        shown = [
            (i["name"], [u["body"] for u in i["incident_updates"]])
            for i in fake_statuspage.incidents.values()
        ]
        return shown, str(fake_statuspage.incidents)
    view = (await http.get(f"{page_url}/api/status.json")).json()
    html = (await http.get(page_url)).text
    shown = [
        (i["name"], [u["body"] for u in reversed(i["updates"])])
        for i in view["incidents"] + view["history"]
    ]
    return shown, html + str(view)


PAGES = pytest.mark.parametrize("page", ["statuspage", "builtin"])


@PAGES
async def test_a_data_breach_stays_off_the_public_page_until_published_and_its_channel_is_private(
    engine: AsyncEngine,
    fake_slack: FakeSlack,
    fake_statuspage: FakeStatuspage,
    clock: FakeClock,
    page: str,
) -> None:
    fake_slack.add_channel("security-incidents")
    for user in ("U0SECLEAD1", "U0SECOPS01", "U0SECOPS02"):
        fake_slack.add_user(user, "T111")
    fake_slack.usergroups["S0SECTEAM"] = ["U0SECOPS01", "U0SECOPS02", "U0SECLEAD1"]
    settings = page_settings(page, fake_statuspage, "checkout", slack_token=fixtures.SLACK_TOKEN,
                             slack_base_url=fake_slack.url)  # fmt: skip
    sinks = build_sinks(settings, engine, clock, security_contacts=CONTACTS)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    recorder = CommandRecorder()
    api = Starlette(
        routes=protect_all(
            [publish_route(engine, recorder, clock=lambda: T0)],
            api_credentials(TOKEN, scopes="admin", name="carol"),
        )
    )
    builtin_page = create_status_app(StatusPageStore(engine), clock.now, "Acme status")
    try:
        async with (
            serving(api) as api_url,
            serving(builtin_page) as page_url,
            httpx.AsyncClient(timeout=5) as http,
        ):
            opened = await pipeline.process_alerts([breach_alert()])
            incident_id = opened[0].incident_id
            assert opened[0].incident.data_breach
            acked = await pipeline.process_command(recorder_command(incident_id))
            await deliver(sinks, opened + list(acked.events), clock)

            # Held: nothing on the page.
            shown, text = await public_view(page, fake_statuspage, http, page_url)
            assert shown == []
            assert "Exfiltration" not in text

            # Slack: private channel, contacts invited, its name in #security-incidents only.
            (name,) = fake_slack.created()
            channel = fake_slack.by_name(name)
            assert channel is not None
            assert channel.is_private
            assert set(channel.members) == {"U0BOT", "U0SECLEAD1", "U0SECOPS01", "U0SECOPS02"}
            (create,) = [a for m, a in fake_slack.calls if m == "conversations.create"]
            assert create["is_private"] in ("1", "true", True)
            (notice,) = fake_slack.posts("security-incidents")
            assert f"private channel #{name}" in notice["text"]
            (announced,) = fake_slack.posts("incidents")
            assert announced["text"] == ":lock: *INCIDENT* - [SEV2] - security incident"
            incidents_text = str(fake_slack.posts("incidents")) + str(
                fake_slack.posts("security-incidents")
            )
            for private in (BREACH, "Exfiltration", SECRET, "checkout", "db-prod-3"):
                assert private not in incidents_text
            assert any(BREACH in m["text"] for m in channel.messages)  # the details: in private

            # Published through the API (real HTTP): exactly the operator's words, on both pages.
            path = f"{api_url}/api/incidents/{incident_id}/statuspage/publish"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            answer = await http.post(
                path, json={"title": TITLE, "body": BODY, "by": "carol"}, headers=auth
            )
            assert answer.status_code == 202
            published: list[IncidentEvent] = []
            for command in recorder.commands:
                published += (await pipeline.process_command(command)).events
            await deliver(sinks, published, clock)
            await deliver(sinks, published, clock)  # redelivered: nothing twice

            shown, _ = await public_view(page, fake_statuspage, http, page_url)
            assert shown == [(TITLE, [BODY])]

            resolved = await pipeline.process_command(recorder_command(incident_id, "resolve"))
            await deliver(sinks, list(resolved.events), clock)
            shown, text = await public_view(page, fake_statuspage, http, page_url)
            named = "checkout" if page == "statuspage" else "Checkout"
            resolution = f"The issue has been resolved. {named} is operating normally."
            assert shown == [(TITLE, [BODY, resolution])]
            for private in (BREACH, "Exfiltration", SECRET, "db-prod-3", "203.0.113.7"):
                assert private not in text
    finally:
        for sink in sinks:
            await sink.close()


def recorder_command(incident_id: str, action: str = "acknowledge") -> Any:
    from models.events import Actor
    from models.incident import Command

    return Command(
        command_id=f"test-{action}",
        action=action,  # type: ignore[arg-type]
        incident_id=incident_id,
        actor=Actor(via="api", name="alice"),
        requested_at=T0 + timedelta(minutes=1),
    )


@PAGES
async def test_an_ordinary_incident_shows_only_allow_listed_words(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock, page: str
) -> None:
    sinks = build_sinks(page_settings(page, fake_statuspage, "api"), engine, clock)
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    builtin_page = create_status_app(StatusPageStore(engine), clock.now, "Acme status")
    firing = alert(
        "ApiDown",
        severity="sev1",
        annotations={"summary": f"api-7f9c token {SECRET}", "description": f"dsn with {SECRET}"},
        service="api",
        team="payments-internal",
        token=SECRET,
    )
    try:
        async with serving(builtin_page) as page_url, httpx.AsyncClient(timeout=5) as http:
            events = await pipeline.process_alerts([firing])
            events += (
                await pipeline.process_command(recorder_command(events[0].incident_id, "resolve"))
            ).events
            await deliver(sinks, events, clock)
            shown, text = await public_view(page, fake_statuspage, http, page_url)
            named = "api" if page == "statuspage" else "Api"
            assert shown == [
                (
                    f"Major outage affecting {named}",
                    [
                        f"We are investigating a major outage affecting {named}. "
                        "We will provide an update within 30 minutes.",
                        f"The issue has been resolved. {named} is operating normally.",
                    ],
                )
            ]
            for private in (SECRET, "payments-internal", "api-7f9c", "dsn"):
                assert private not in text
    finally:
        for sink in sinks:
            await sink.close()
