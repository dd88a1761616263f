"""A note posted in the incident's Slack channel, once, escaped (the fake Slack enforces the API's
contract: tokens, channels, message sizes)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.events import Actor
from models.incident import Command
from models.timeline_notes import add_note
from sinks.slack_note import note_message
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import clock, fake_slack, records, sink_named, sink_settings, worker_for
from testkit.fakes.slack import FakeSlack

__all__ = ["clock", "fake_slack"]  # the fixtures, used by name

HOSTILE = "<!channel> *bold* <https://evil.example|click>"


def _noted(story: IncidentStory, text: str, at: timedelta) -> list:  # type: ignore[type-arg]
    assert story.incident is not None
    command = Command(
        command_id=f"note-{at}",
        action="note",
        incident_id=story.incident.id,
        actor=Actor(via="api", name="carol <@U1>"),
        requested_at=T0 + at,
        text=text,
    )
    return story._apply(add_note(story.incident, command, T0 + at))  # type: ignore[no-any-return]


async def test_a_note_is_posted_in_the_incident_channel_once_and_escaped(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    story = IncidentStory(name="ApiErrors", group="ApiErrors", service="api")
    events = story.fire() + _noted(story, f"rolled back {HOSTILE}", timedelta(minutes=3))
    try:
        await worker.process(records(events))
        await worker.process(records(events))  # redelivered: nothing posted again
        assert dead.letters == []
        posts = fake_slack.posts(f"incident-20260115-{events[0].incident.slug}")
        notes = [p["text"] for p in posts if p["text"].startswith(":memo:")]
        assert notes == [
            ":memo: *Note* from carol &lt;@U1&gt; (via api): rolled back "
            "&lt;!channel&gt; *bold* &lt;https://evil.example|click&gt;"
        ]
    finally:
        await sink.close()


def test_a_long_note_fits_a_section() -> None:
    story = IncidentStory(name="ApiErrors", group="ApiErrors", service="api")
    story.fire()
    (event,) = _noted(story, "<" * 2000, timedelta(minutes=1))
    message = note_message(event)
    assert len(message.blocks[0]["text"]["text"]) <= 3000
