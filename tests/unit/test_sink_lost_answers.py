"""A vendor call whose answer is lost or unreadable is never made twice, and never stops a sink.

The fakes do the work and then hold their answer past the client's timeout (a connection cut
after the vendor acted), or answer in a shape the client cannot read (a proxy's page, a body
whose ``Content-Encoding`` lies). Slack posts and channels and Statuspage incidents and updates
have no idempotency key at the vendor: a plain retry made a second message, a channel ``…-2``, a
second incident or a second public update (which notifies subscribers again)."""

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from models.severity import Severity
from sinks.errors import DeliveryError
from sinks.pagerduty_client import PagerDutySender
from sinks.pagerduty_format import pagerduty_calls
from sinks.statuspage_client import StatuspageClient
from sinks.statuspage_format import StatusChange
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import IncidentStory
from testkit.fakes.fixtures import (
    ROUTING_KEY,
    SP_KEY,
    SP_PAGE,
    records,
    sink_named,
    sink_settings,
    worker_for,
)
from testkit.fakes.http import FakeServer, Request
from testkit.fakes.pagerduty import FakePagerDuty
from testkit.fakes.slack import FakeSlack
from testkit.fakes.statuspage import FakeStatuspage

clock = fixtures.clock
fake_pagerduty = fixtures.fake_pagerduty
fake_slack = fixtures.fake_slack
fake_statuspage = fixtures.fake_statuspage
tls_cert = fixtures.tls_cert

IDENTIFIED = "The issue has been identified and a fix is being implemented."
#: Past the client's timeout (1 s below): the client gives up, the vendor has acted.
HELD_FOR = 2.5
#: A body the client is told is gzip and is not (a proxy in front of the vendor).
LYING_GZIP = {"body": b"<html>bad gateway</html>", "headers": (("Content-Encoding", "gzip"),)}


def answer_late_once(fake: FakeServer, which: str, method: str | None = None) -> None:
    """The first request to a path ending in ``which`` (and of ``method``, when given) is done
    by the fake, whose answer then waits :data:`HELD_FOR` seconds."""
    released = threading.Event()
    held: list[Request] = []

    def first(request: Request) -> bool:
        if held or not request.path.endswith(which):
            return False
        if method is not None and request.method != method:
            return False
        held.append(request)
        threading.Timer(HELD_FOR, released.set).start()
        return True

    fake.faults.hold = released
    fake.faults.hold_if = first


async def test_a_slack_post_whose_answer_was_lost_is_found_not_posted_again(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    answer_late_once(fake_slack, "chat.postMessage")
    sink = sink_named(
        sink_settings(slack=fake_slack, sinks_request_timeout_seconds=1.0), engine, clock, "slack"
    )
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory().fire()))
    finally:
        await sink.close()
    assert fake_slack.faults.held.is_set()  # the fault did happen
    assert len(fake_slack.posts("incidents")) == 1
    assert dead.letters == []


async def test_a_slack_channel_whose_answer_was_lost_is_found_not_made_again(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    answer_late_once(fake_slack, "conversations.create")
    sink = sink_named(
        sink_settings(slack=fake_slack, sinks_request_timeout_seconds=1.0), engine, clock, "slack"
    )
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory().fire()))
    finally:
        await sink.close()
    assert fake_slack.faults.held.is_set()
    (created,) = fake_slack.created()
    assert not created.endswith("-2")
    assert len(fake_slack.posts(created)) >= 1  # the incident channel's intro went to it
    assert dead.letters == []


async def test_a_statuspage_incident_whose_answer_was_lost_is_found_not_opened_again(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    answer_late_once(fake_statuspage, "/incidents", "POST")
    settings = sink_settings(statuspage=fake_statuspage, sinks_request_timeout_seconds=1.0)
    sink = sink_named(settings, engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory(severity=Severity.SEV1).fire()))
    finally:
        await sink.close()
    assert fake_statuspage.faults.held.is_set()
    assert len(fake_statuspage.incidents) == 1
    assert dead.letters == []


async def test_a_statuspage_update_whose_answer_was_lost_is_posted_once(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    story = IncidentStory(severity=Severity.SEV1)
    answer_late_once(fake_statuspage, "", "PATCH")
    settings = sink_settings(statuspage=fake_statuspage, sinks_request_timeout_seconds=1.0)
    sink = sink_named(settings, engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records([*story.fire(), *story.ack()]))
    finally:
        await sink.close()
    assert fake_statuspage.faults.held.is_set()
    (incident,) = fake_statuspage.incidents.values()
    words = [u["body"] for u in incident["incident_updates"]]
    assert words.count(IDENTIFIED) == 1, words
    assert [m for m, _ in fake_statuspage.writes].count("PATCH") == 1
    assert incident["status"] == "identified"
    assert dead.letters == []


async def test_an_older_update_with_the_same_words_is_not_taken_for_the_new_one(
    fake_statuspage: FakeStatuspage,
) -> None:
    """A reopened incident goes back to words it showed before: only the newest update counts."""
    client = StatuspageClient(SecretStr(SP_KEY), SP_PAGE, fake_statuspage.url, timeout=5)
    investigating = StatusChange("create", "API errors", "investigating", "major", "Looking.")
    try:
        page_id = await client.create("inc-1", investigating)
        assert await client.shows(page_id, investigating)
        resolved = StatusChange("resolve", "API errors", "resolved", "major", "Fixed.")
        await client.update(page_id, "inc-1", resolved)
        assert await client.shows(page_id, resolved)
        reopened = StatusChange("reopen", "API errors", "investigating", "major", "Looking.")
        assert not await client.shows(page_id, reopened)
        await client.update(page_id, "inc-1", reopened)
        assert await client.shows(page_id, reopened)
        assert not await client.shows(
            page_id, StatusChange("x", "API errors", "investigating", "major", "Other.")
        )
    finally:
        await client.close()


async def test_a_slack_answer_that_is_not_json_is_asked_again_not_fatal(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """slack-sdk's own check of a 200 in text/plain raised AttributeError, which stopped the
    sink's worker (and the sinks process) at this event at every start."""
    fake_slack.faults.fail_next(1, 200, body=b"ok", content_type="text/plain")
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory().fire()))
    finally:
        await sink.close()
    assert fake_slack.faults.failed == 1
    assert len(fake_slack.posts("incidents")) == 1
    assert dead.letters == []


async def test_a_statuspage_answer_whose_encoding_lies_is_asked_again_not_fatal(
    engine: AsyncEngine, fake_statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    fake_statuspage.faults.fail_next(1, 502, **LYING_GZIP)
    sink = sink_named(sink_settings(statuspage=fake_statuspage), engine, clock, "statuspage")
    worker, dead = worker_for(sink, clock)
    try:
        await worker.process(records(IncidentStory(severity=Severity.SEV1).fire()))
    finally:
        await sink.close()
    assert fake_statuspage.faults.failed == 1
    assert len(fake_statuspage.incidents) == 1
    assert dead.letters == []


@pytest.mark.parametrize("status", [202, 502])
async def test_a_pagerduty_answer_whose_encoding_lies_is_a_retryable_delivery_error(
    fake_pagerduty: FakePagerDuty, tls_cert: tuple[Path, Path], status: int
) -> None:
    """httpx2's DecodingError is not wrapped in pagerduty.Error: it went through every handler."""
    fake_pagerduty.faults.fail_next(1, status, **LYING_GZIP)
    sender = PagerDutySender(SecretStr(ROUTING_KEY), fake_pagerduty.url, timeout=5, ca_file=tls_cert[0])
    (call,) = pagerduty_calls(IncidentStory().fire()[0], paged=False, severities=frozenset(Severity))
    try:
        with pytest.raises(DeliveryError) as refused:
            await sender.send(call)
        assert refused.value.retryable
        assert await sender.send(call) == call.dedup_key  # and the repeat goes through
    finally:
        sender.close()


async def test_a_change_without_words_is_shown_only_with_its_impact_and_components(
    fake_statuspage: FakeStatuspage,
) -> None:
    """A severity's change keeps the status and has no words: only its impact and components
    tell whether it was applied (taken as applied by its status alone, it was lost)."""
    client = StatuspageClient(SecretStr(SP_KEY), SP_PAGE, fake_statuspage.url, timeout=5)
    opened = StatusChange(
        "create", "API errors", "investigating", "major", "Looking.", {"cmpapi000001": "partial_outage"}
    )
    worse = StatusChange(
        "update", "API errors", "investigating", "critical", None, {"cmpapi000001": "major_outage"}
    )
    try:
        page_id = await client.create("inc-1", opened)
        assert await client.shows(page_id, opened)
        assert not await client.shows(page_id, worse)
        await client.update(page_id, "inc-1", worse)
        assert await client.shows(page_id, worse)
        assert not await client.shows(page_id, opened)
    finally:
        await client.close()
