"""Forced maintenance windows are announced in the announcement channel, once (issue 15).

The notice is written with the window and its audit record (store/notices.py); the Slack sink's
process posts it under the delivery log and marks it (sinks/notices.py). These tests drive the
CLI and the admin API as operators do, the fake Slack enforces Slack's API, and a "restart" is a
fresh sink and announcer on the same store.
"""

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.notices import WindowNotice, notice_id
from sevflow.admin import Who, create_window, end_window, new_window
from sinks.notice_format import window_notice
from sinks.notices import NoticeAnnouncer
from sinks.slack import SlackSink
from store.maintenance import MaintenanceStore
from store.notices import NoticeStore, notices
from testkit.fakes.clock import FakeClock
from testkit.fakes.fixtures import clock, fake_slack, sink_named, sink_settings
from testkit.fakes.slack import FakeSlack
from testkit.local import REPO
from tests.unit.test_access import SECRETS, Receiver, Scope, receiver

__all__ = ["clock", "fake_slack", "receiver"]  # fixtures used by name

OPERATOR = Who("alice", "cli")
PING = "<!channel>"


@asynccontextmanager
async def announcer(
    fake: FakeSlack, engine: AsyncEngine, clock: FakeClock
) -> AsyncIterator[NoticeAnnouncer]:
    """The Slack sink's notices task as ``sevflow sinks`` builds it: a new one is a restart."""
    sink = sink_named(sink_settings(slack=fake), engine, clock, "slack")
    assert isinstance(sink, SlackSink)
    try:
        yield NoticeAnnouncer(sink, NoticeStore(engine), clock)
    finally:
        await sink.close()


async def one_round(fake: FakeSlack, engine: AsyncEngine, clock: FakeClock) -> int:
    """A fresh process's first round: how many notices it announced."""
    async with announcer(fake, engine, clock) as task:
        return await task.run_once()


def announcements(fake: FakeSlack) -> list[str]:
    return [m["text"] for m in fake.posts("incidents")]


async def forced_window(engine: AsyncEngine, clock: FakeClock, comment: str = "db failover") -> str:
    now = clock.now()
    window = new_window(['alertname=~".*"'], now, now + timedelta(hours=2), comment, OPERATOR)
    forced = await create_window(engine, window, force=True, max_hours=24, who=OPERATOR, now=now)
    assert forced
    return window.id


def sevflow(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEVFLOW_")}
    env["SEVFLOW_DATABASE_URL"] = database_url
    env["LOGNAME"] = "alice"  # the CLI acts as the login name
    return subprocess.run(
        [sys.executable, "-m", "sevflow", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_forced_window_made_with_the_cli_is_announced_once(
    database_url: str, engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    added = await asyncio.to_thread(
        sevflow, database_url, "maintenance", "add", "-m", 'service="db"', "--end", "+30h",
        "--comment", f"failover {PING}", "--force",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    window_id = added.stdout.split(":")[0]
    listed = await asyncio.to_thread(sevflow, database_url, "maintenance", "list")
    assert "NOT announced: SEVFLOW_SLACK_TOKEN is not set" in listed.stdout
    assert await one_round(fake_slack, engine, clock) == 1
    assert await one_round(fake_slack, engine, clock) == 0
    (text,) = announcements(fake_slack)
    assert f"Forced maintenance window {window_id}* created by alice (cli)" in text
    assert 'service="db"' in text
    assert "lasts 30 hours" in text
    assert PING not in text
    assert "&lt;!channel&gt;" in text
    ended = await asyncio.to_thread(sevflow, database_url, "maintenance", "end", window_id)
    assert ended.returncode == 0, ended.stderr
    assert await one_round(fake_slack, engine, clock) == 1
    assert len(announcements(fake_slack)) == 2
    assert f"{window_id} ended early" in announcements(fake_slack)[1]
    listed = await asyncio.to_thread(sevflow, database_url, "maintenance", "list", "--all")
    assert listed.stdout.count("announced in #incidents") == 2


async def test_a_forced_window_made_with_the_admin_api_is_announced_once(
    receiver: Receiver, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    broad = {"matchers": ['service!="checkout"'], "end": "+1h", "force": True, "by": PING}
    created = await receiver.http.post("/api/maintenance", json=broad, headers=admin)
    assert created.status_code == 201
    narrow = {"matchers": ['service="checkout"'], "end": "+1h"}
    assert (await receiver.http.post("/api/maintenance", json=narrow, headers=admin)).is_success
    for _ in range(2):  # the second round (or a second replica) finds nothing left
        await one_round(fake_slack, receiver.engine, clock)
    (text,) = announcements(fake_slack)
    assert "created by admin-bot (api)" in text
    assert "matches every alert" in text
    assert 'service!="checkout"' in text
    assert PING not in text


@pytest.mark.parametrize(
    ("end", "words"),
    [
        ("+1e308h", "not a time: '+1e308h'"),
        ("-5h", "not a time: '-5h'"),
        ("+99999999999999999999d", "is too far in the future"),
        ("2026-01-01T00:00:00", "has no time zone (add Z for UTC)"),
    ],
)
async def test_a_time_the_admin_api_cannot_read_is_422_naming_it(
    receiver: Receiver, end: str, words: str
) -> None:
    admin = {"authorization": f"Bearer {SECRETS[Scope.ADMIN]}"}
    window = {"matchers": ['service="checkout"'], "end": end}
    refused = await receiver.http.post("/api/maintenance", json=window, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_request"
    assert words in refused.json()["message"]
    listed = await receiver.http.get("/api/maintenance", params={"all": "true"}, headers=admin)
    assert listed.json() == {"windows": []}


async def test_a_window_that_is_not_forced_announces_nothing(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    now = clock.now()
    window = new_window(['service="checkout"'], now, now + timedelta(hours=2), "", OPERATOR)
    assert await create_window(engine, window, force=True, max_hours=24, who=OPERATOR, now=now) == []
    await end_window(engine, window.id, who=OPERATOR, now=now + timedelta(minutes=5))
    assert await NoticeStore(engine).pending() == []
    assert await one_round(fake_slack, engine, clock) == 0
    assert announcements(fake_slack) == []


async def test_a_restart_between_the_post_and_its_log_does_not_post_again(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    await forced_window(engine, clock)
    fake_slack.faults.hold = threading.Event()  # Slack takes the post; its answer never arrives
    fake_slack.faults.hold_if = lambda request: request.path.endswith("chat.postMessage")
    async with announcer(fake_slack, engine, clock) as first:
        running = asyncio.create_task(first.run_once())
        assert await asyncio.to_thread(fake_slack.faults.held.wait, 30)
        running.cancel()  # the process dies with the post in flight
        with pytest.raises(asyncio.CancelledError):
            await running
    fake_slack.faults.hold.set()
    fake_slack.faults.hold = None
    assert len(announcements(fake_slack)) == 1
    assert await one_round(fake_slack, engine, clock) == 1  # found in the history
    assert len(announcements(fake_slack)) == 1
    assert await NoticeStore(engine).pending() == []


async def test_a_restart_between_the_log_and_the_mark_does_not_post_again(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    window_id = await forced_window(engine, clock)
    assert await one_round(fake_slack, engine, clock) == 1
    async with engine.begin() as conn:  # the crash: posted and logged, not marked
        await conn.execute(
            update(notices)
            .where(notices.c.id == notice_id(window_id, "created"))
            .values(status="pending", announced_at=None)
        )
    assert await one_round(fake_slack, engine, clock) == 1
    assert len(announcements(fake_slack)) == 1
    assert await NoticeStore(engine).pending() == []


async def test_slack_errors_are_retried_and_a_refusal_is_counted_and_not_retried(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    await forced_window(engine, clock)
    fake_slack.faults.fail_next(3, 503)
    assert await one_round(fake_slack, engine, clock) == 1
    assert len(announcements(fake_slack)) == 1
    assert clock.slept
    incidents = fake_slack.by_name("incidents")
    assert incidents is not None
    incidents.is_member = False  # the bot was removed from #incidents: not_in_channel
    await forced_window(engine, clock, "second")
    async with announcer(fake_slack, engine, clock) as refused:
        assert await refused.run_once() == 0
        assert refused.failed == 1
        assert await NoticeStore(engine).pending() == []  # marked failed: never tried again
        assert await refused.run_once() == 0
        assert refused.failed == 1
    windows = await MaintenanceStore(engine).listing()
    states = await NoticeStore(engine).states([w.id for w in windows])
    assert sorted(s for kinds in states.values() for _, s in kinds) == ["announced", "failed"]


@pytest.mark.parametrize("where", ["comment", "matcher", "actor"])
def test_every_operator_word_is_escaped(where: str, clock: FakeClock) -> None:
    now = clock.now()
    hostile = f"{PING} <https://evil.example|click> <@U0123456> &amp"
    notice = WindowNotice(
        id="mw_1:created",
        kind="created",
        window_id="mw_1",
        at=now,
        actor=hostile if where == "actor" else "alice",
        via="api",
        matchers=(f'note="{hostile}"',) if where == "matcher" else ('service="db"',),
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        overridden=("it matches every alert",),
        comment=hostile if where == "comment" else "",
    )
    message = window_notice(notice)
    for text in (message.text, message.blocks[0]["text"]["text"]):
        assert "<" not in text
        assert ">" not in text
        assert "&lt;!channel&gt;" in text
        assert "&amp;amp" in text
