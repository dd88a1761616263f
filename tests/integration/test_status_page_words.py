"""The playbook's status-page sentences with the incident's words in place, as the public reads
them: on Atlassian Statuspage (its contract-enforcing fake) and on the built-in status page,
with the delivery log on SQLite and PostgreSQL (the ``engine`` fixture)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import IncidentEvent
from sinks.status_server import page_view, render_html
from store.status_page import StatusPageStore
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import records, sink_named, sink_settings, worker_for
from testkit.fakes.statuspage import FakeStatuspage

clock = fixtures.clock
fake_statuspage = fixtures.fake_statuspage

PROMISE = " We will provide an update within 30 minutes."

#: (public title, impact, resolved_text) → the opening and the resolution, "{api}" standing for
#: how the page names the api service's component.
CASES = [
    (
        "Slow API",
        "Slow API response times.",
        "API response times have returned to normal",
        "We are investigating reports of slow API response times.",
        "The issue has been resolved. API response times have returned to normal.",
    ),
    (
        "Checkout errors",
        "users see errors on checkout",
        None,
        "We are investigating an issue affecting {api}.",
        "The issue has been resolved. {api} is operating normally.",
    ),
    (
        "Slow responses",
        "Users experiencing slow response times",
        "the issue has been resolved: every request is fast again",
        "We are investigating reports of users experiencing slow response times.",
        "The issue has been resolved: every request is fast again.",
    ),
    (
        "Errors everywhere",
        "Everything is down. Nobody can log in",
        "all good.",
        "We are investigating an issue affecting {api}.",
        "The issue has been resolved. All good.",
    ),
]


def stories() -> tuple[list[IncidentStory], list[IncidentEvent]]:
    made: list[IncidentStory] = []
    events: list[IncidentEvent] = []
    for i, (title, impact, resolved_text, _, _) in enumerate(CASES):
        annotations = {"summary_public": title}
        if resolved_text is not None:
            annotations["resolved_text"] = resolved_text
        story = IncidentStory(
            name=f"Alert{i}", group=f"g{i}", service="api", impact=impact, annotations=annotations
        )
        at = T0 + timedelta(seconds=i)
        events += story.fire(at=at) + story.resolve(at=at + timedelta(minutes=45))
        made.append(story)
    return made, events


async def test_statuspage_reads_the_playbooks_sentences(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(statuspage=fake_statuspage), engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    _, events = stories()
    try:
        await worker.process(records(events))
        assert dead.letters == []
        by_name = {i["name"]: i for i in fake_statuspage.incidents.values()}
        for title, _, _, opening, resolution in CASES:
            bodies = [u["body"] for u in by_name[title]["incident_updates"]]
            # Statuspage components are ids: the texts name the service instead.
            assert bodies == [opening.format(api="api") + PROMISE, resolution.format(api="api")]
    finally:
        await sink.close()


async def test_the_builtin_page_reads_the_playbooks_sentences(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    settings = sink_settings(statuspage_components={"api": "API"})
    sink = sink_named(settings, engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    made, events = stories()
    try:
        await worker.process(records(events))
        assert dead.letters == []
        page = StatusPageStore(engine)
        shown = []
        for story, (_, _, _, opening, resolution) in zip(made, CASES, strict=True):
            record = await page.get(story.events[0].incident_id)
            assert record is not None
            assert [u["body"] for u in record.updates] == [
                opening.format(api="API") + PROMISE,
                resolution.format(api="API"),
            ]
            shown.append(record)
        html = render_html(page_view([], shown, clock.now()), "Acme status")
        assert "<strong>Resolved</strong> - The issue has been resolved. API response times" in html
        assert "reports of users see" not in html
    finally:
        await sink.close()
