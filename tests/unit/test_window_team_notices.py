"""A forced maintenance window is announced in the default announcement channel and in the own
channel of each team it concerns: a team whose every matcher is one of the window's matchers
(so every alert the window holds passes that team's matchers). Fake Slack, real store."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.teams import default_team, parse_teams
from sevflow.admin import Who, create_window, new_window
from sinks.fanout import build_sinks
from sinks.notices import NoticeAnnouncer, window_teams
from sinks.slack import SlackSink
from store.notices import NoticeStore
from testkit.fakes.clock import FakeClock
from testkit.fakes.fixtures import clock, fake_slack, sink_settings
from testkit.fakes.slack import FakeSlack

__all__ = ["clock", "fake_slack"]  # fixtures used by name

DEFAULT, _ = default_team(None, "incidents", {})
TEAMS = parse_teams(
    """\
teams:
  - name: payments
    matchers: ['team="payments"']
    announce_channel: payments-incidents
  - name: storage
    matchers: ['team = "storage"', 'receiver="storage-pager"']
    announce_channel: storage-incidents
  - name: search
    matchers: ['team="search"']
""",
    DEFAULT,
)


def test_a_window_concerns_the_teams_whose_every_matcher_it_carries() -> None:
    assert window_teams(TEAMS, ['team="payments"', 'service="checkout"']) == ["payments"]
    # Written differently, the same matcher; one of two matchers is not enough.
    assert window_teams(TEAMS, ["team=payments"]) == ["payments"]
    assert window_teams(TEAMS, ['team="storage"']) == []
    assert window_teams(TEAMS, ['receiver="storage-pager"', 'team="storage"']) == ["storage"]
    # A regex or a negation may reach other teams' alerts too: only the default channel.
    assert window_teams(TEAMS, ['team=~"pay.*"']) == []
    assert window_teams(TEAMS, ['team!="payments"']) == []
    # A team without a channel of its own is told in the default channel anyway.
    assert window_teams(TEAMS, ['team="search"']) == []


async def test_a_teams_window_is_announced_in_its_channel_and_the_default_once(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_channel("payments-incidents")
    fake_slack.add_channel("storage-incidents")
    who = Who("alice", "cli")
    now = clock.now()
    window = new_window(['team="payments"'], now, now + timedelta(hours=30), "db move", who)
    assert await create_window(engine, window, force=True, max_hours=24, who=who, now=now)
    settings = sink_settings(slack=fake_slack)
    for _ in range(2):  # a restart announces nothing twice
        (sink,) = [s for s in build_sinks(settings, engine, clock, teams=TEAMS) if s.name == "slack"]
        assert isinstance(sink, SlackSink)
        try:
            await NoticeAnnouncer(sink, NoticeStore(engine), clock, TEAMS).run_once()
        finally:
            await sink.close()
    (team_post,) = fake_slack.posts("payments-incidents")
    (default_post,) = fake_slack.posts("incidents")
    assert f"Forced maintenance window {window.id}*" in team_post["text"]
    assert team_post["text"] == default_post["text"]
    assert fake_slack.posts("storage-incidents") == []
