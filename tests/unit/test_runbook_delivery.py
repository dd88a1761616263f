"""The runbook reaches the responders: posted in the incident channel right after it opens and
pinned (once, also when the opening event is delivered again), within Slack's block limits."""

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.runbooks import parse_runbook
from models.severity import Severity
from sinks.slack_format import runbook_messages
from streams.runbooks import load_runbooks
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import (
    clock,
    fake_pagerduty,
    fake_slack,
    records,
    sink_named,
    sink_settings,
    tls_cert,
    worker_for,
)
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack, _message_problem

__all__ = ["clock", "fake_pagerduty", "fake_slack", "tls_cert"]  # the fixtures used here

SHIPPED = load_runbooks(None)


def story(**kw: object) -> IncidentStory:
    return IncidentStory(runbooks=SHIPPED, labels={"namespace": "shop"}, **kw)  # type: ignore[arg-type]


def channel_of(fake: FakeSlack) -> str:
    created = fake.created()
    assert len(created) == 1
    return created[0]


async def test_the_runbook_is_posted_in_the_channel_and_pinned_once(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    events = story().fire()
    try:
        await sink.preload(events)
        assert await sink.handle(events) == []
        channel = channel_of(fake_slack)
        posts = fake_slack.posts(channel)
        assert len(posts) == 2  # the playbook's announcement, then the runbook
        runbook = posts[1]
        assert runbook["blocks"][0]["text"]["text"] == ":book: Runbook: Service Unavailable (5xx errors)"
        body = "\n".join(b["text"]["text"] for b in runbook["blocks"] if b["type"] == "section")
        assert "kubectl get pods -n shop\n" in body
        assert "kubectl rollout restart deployment/api -n shop" in body  # service="api"
        context = runbook["blocks"][-1]["elements"][0]["text"]
        assert "<https://runbooks.example.com/api-errors|" in context  # the alert's runbook_url
        assert [m["ts"] for m in fake_slack.pinned(channel)] == [runbook["ts"]]

        # The opening event delivered again (a sink restarted before committing its offset).
        await sink.preload(events)
        assert await sink.handle(events) == []
        assert len(fake_slack.posts(channel)) == 2
        assert [m for m, _ in fake_slack.calls].count("pins.add") == 1
    finally:
        await sink.close()


async def test_an_incident_without_a_runbook_gets_no_runbook_post(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    events = story(name="DiskAlmostFull", severity=Severity.SEV2).fire()
    try:
        assert await sink.handle(events) == []
        assert len(fake_slack.posts(channel_of(fake_slack))) == 1
        assert fake_slack.pinned(channel_of(fake_slack)) == []
    finally:
        await sink.close()


def test_a_long_runbook_is_split_never_refused() -> None:
    line = "kubectl logs -l app=<app> -n <namespace> --since=30m | grep -E 'timeout|5xx' && echo done"
    body = "**Investigation:**\n```bash\n" + "\n".join([line] * 210) + "\n```\n"
    runbook = parse_runbook("long", f"---\ntitle: Long\nmatchers: ['a=\"b\"']\n---\n{body}")
    events = IncidentStory(runbooks=None).fire()
    from models.runbooks import render

    incident = events[0].incident.model_copy(update={"runbook": render(runbook, {"app": "api"})})
    messages = runbook_messages(incident)
    assert len(messages) == 1
    blocks = messages[0].blocks
    assert len(blocks) > 3  # split into several sections
    for message in messages:
        assert _message_problem({"text": message.text}, message.blocks) is None
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(s.count("```") % 2 == 0 for s in sections)  # a cut code block is closed, reopened
    joined = "\n".join(sections)
    assert joined.count("app=api -n &lt;namespace&gt;") == 210  # nothing lost, placeholder visible


@pytest.mark.parametrize("count", [60, 120])
def test_a_runbook_of_more_than_fifty_blocks_continues_in_further_messages(count: int) -> None:
    wide = "😀" * 1400  # 2,800 UTF-16 units: one section each
    body = "\n".join([wide] * count)
    from models.events import RunbookSnapshot

    events = IncidentStory().fire()
    snapshot = RunbookSnapshot(name="wide", title="Wide", text=body)
    messages = runbook_messages(events[0].incident.model_copy(update={"runbook": snapshot}))
    assert len(messages) == -(-count // 48)
    for message in messages:
        assert _message_problem({"text": message.text}, message.blocks) is None
    assert sum(len(m.blocks) for m in messages) >= count


async def test_the_pagerduty_event_links_the_runbook_and_carries_its_text(
    engine: AsyncEngine,
    fake_pagerduty: FakePagerDuty,
    tls_cert: tuple[Path, Path],
    clock: FakeClock,
) -> None:
    template = "https://git.example.com/ops/runbooks/-/blob/main/{name}.md"
    linked = load_runbooks(None, template)
    settings = sink_settings(pagerduty=fake_pagerduty, cert=tls_cert)
    sink = sink_named(settings, engine, clock, "pagerduty")
    worker, dead = worker_for(sink, clock)
    events = IncidentStory(runbooks=linked, labels={"namespace": "shop"}).fire()
    try:
        await worker.process(records(events))
    finally:
        await sink.close()
    assert dead.letters == []
    (event,) = fake_pagerduty.events
    assert event["links"][:2] == [
        {"href": template.replace("{name}", "service-unavailable"), "text": "Runbook: Service "
         "Unavailable (5xx errors)"},
        {"href": "https://runbooks.example.com/api-errors", "text": "Runbook"},
    ]  # fmt: skip
    details = event["payload"]["custom_details"]["runbook"]
    assert details.startswith("Service Unavailable (5xx errors)\n\n**Symptoms:**")
    assert "kubectl get pods -n shop\n" in details


def test_a_runbook_too_large_for_pagerduty_is_shortened_not_refused() -> None:
    from models.events import RunbookSnapshot
    from sinks.limits import PAGERDUTY_EVENT_MAX_BYTES
    from sinks.pagerduty_format import event_size, trigger_call

    (opened, *_) = IncidentStory().fire()
    huge = RunbookSnapshot(name="huge", title="Huge", text="x" * 600_000)
    call = trigger_call(opened.model_copy(update={"incident": opened.incident.model_copy(
        update={"runbook": huge})}))  # fmt: skip
    assert event_size(call) <= PAGERDUTY_EVENT_MAX_BYTES
    assert call.payload["custom_details"]["runbook"].endswith("… (truncated)")
