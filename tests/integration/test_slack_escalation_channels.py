"""An escalation naming a Slack channel is posted in that channel (the playbook's "Notify Security
Team: Slack #security-incidents"), once, whatever the incident's announcement routing; users and
user groups are mentioned in the incident channel instead."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models.escalation import Target
from models.events import IncidentEvent
from models.severity import Severity
from sinks.fanout import build_sinks
from testkit.fakes import fixtures
from testkit.fakes.clock import FakeClock
from testkit.fakes.events import T0, IncidentStory
from testkit.fakes.fixtures import delivered, sink_named, sink_settings
from testkit.fakes.slack import FakeSlack

clock = fixtures.clock
fake_slack = fixtures.fake_slack

SECURITY = {
    "level": "security",
    "level_name": "security contact",
    "targets": json.dumps(
        [
            {"kind": "email", "to": "security@optimal-build.com", "label": "Security"},
            {"kind": "slack", "to": "#security-incidents", "label": "Security"},
        ]
    ),
    "targets_text": "Security, Security",
}
REASON = (
    "security incident: security contact told in #security-incidents; "
    "security@optimal-build.com not emailed (no SMTP configured)"
)


def security_story(severity: Severity = Severity.SEV2) -> tuple[IncidentStory, list[IncidentEvent]]:
    story = IncidentStory(severity=severity)
    events = story.fire()
    events += story.escalate(SECURITY, T0 + timedelta(seconds=5), REASON)
    return story, events


async def test_the_security_channel_is_told_once(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_channel("security-incidents")
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    _, events = security_story()
    letters = await delivered(sink, clock, events, events)  # redelivered: nothing twice
    assert letters == []
    (notice,) = fake_slack.posts("security-incidents")
    assert notice["text"].startswith(":mega: *[SEV2] API Error Rate Spike*")
    assert f"*Why you are told:* {REASON} (security contact)" in notice["text"]
    assert notice["text"].endswith("Updates in #incident-20260115-high-error-rate")
    assert [b["type"] for b in notice["blocks"]] == ["section", "actions"]  # Acknowledge / Resolve
    updates = [p["text"] for p in fake_slack.posts("incident-20260115-high-error-rate")[1:]]
    assert updates == [
        ":mega: Security contact: security@optimal-build.com not emailed (no SMTP configured), "
        "#security-incidents"
    ]


async def test_an_incident_not_announced_in_slack_still_reaches_the_security_channel(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_channel("security-incidents")
    settings = sink_settings(slack=fake_slack, slack_severities="SEV1")
    sink = sink_named(settings, engine, clock, "slack")
    story, events = security_story(Severity.SEV3)
    letters = await delivered(sink, clock, events)
    assert letters == []
    assert fake_slack.created() == []  # SEV3 is not announced here
    (notice,) = fake_slack.posts("security-incidents")
    assert notice["text"].startswith(":mega: *[SEV3] API Error Rate Spike*")
    assert notice["text"].endswith(f"Incident {story.events[0].incident_id}")


async def test_a_missing_escalation_channel_is_dead_lettered_with_its_name(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    _, events = security_story()
    letters = await delivered(sink, clock, events)
    (letter,) = letters
    assert "Security channel #security-incidents not found" in json.dumps(letter, default=str)
    # The incident's own channel and announcement are unaffected.
    assert len(fake_slack.posts("incidents")) == 1


async def test_with_smtp_configured_the_channel_says_the_email_is_queued(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_channel("security-incidents")
    settings = sink_settings(slack=fake_slack, smtp_host="127.0.0.1", smtp_port=1)
    sink = sink_named(settings, engine, clock, "slack")
    _, events = security_story()
    letters = await delivered(sink, clock, events)
    assert letters == []
    updates = [p["text"] for p in fake_slack.posts("incident-20260115-high-error-rate")[1:]]
    assert updates == [
        ":mega: Security contact: security@optimal-build.com (email queued), #security-incidents"
    ]


def digest_listing(story: IncidentStory, at: datetime) -> list[IncidentEvent]:
    """The escalation loop's ``digest`` firing for ``story``'s incident (models.escalation)."""
    data = {"level": "digest", "level_name": "next business day digest", "targets": "[]"}
    data["digest_day"] = "2026-01-16"
    return story.escalate(data, at, "SEV4: listed in the morning digest of 2026-01-16")


async def test_the_morning_digest_is_one_announcement_edited_as_incidents_join(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """SEV4 incidents are not announced one by one: the loop lists each in the next business
    morning's digest, one #incidents message per day, edited as the others join; a redelivery
    posts nothing twice."""
    sink = sink_named(
        sink_settings(slack=fake_slack, slack_severities="SEV1-SEV3"), engine, clock, "slack"
    )
    morning = datetime(2026, 1, 16, 9, 0, tzinfo=UTC)
    first = IncidentStory(severity=Severity.SEV4)
    second = IncidentStory(name="DiskAlmostFull", severity=Severity.SEV4, group="disk")
    one = [*first.fire(), *digest_listing(first, morning)]
    two = [*second.fire(), *digest_listing(second, morning)]
    letters = await delivered(sink, clock, one, two, [*one, *two])  # redelivered: nothing twice
    assert letters == []
    (digest,) = fake_slack.posts("incidents")
    assert digest["text"].startswith(":sunrise: *FOR TODAY* (2026-01-16) - 2 incidents due")
    assert f"({one[0].incident_id})" in digest["text"]
    assert f"({two[0].incident_id})" in digest["text"]
    assert fake_slack.created() == []  # no incident channel for a SEV4


async def test_a_sev4_security_incident_is_listed_in_the_digest_as_a_security_incident(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """Security does not raise the severity, and the morning digest listed a SEV4 security
    incident by its internal title in #incidents (the storm digest did not)."""
    sink = sink_named(
        sink_settings(slack=fake_slack, slack_severities="SEV1-SEV3"), engine, clock, "slack"
    )
    story = IncidentStory(name="AdminLogin", summary=LEAK, severity=Severity.SEV4, security=True)
    events = [*story.fire(), *digest_listing(story, datetime(2026, 1, 16, 9, 0, tzinfo=UTC))]
    letters = await delivered(sink, clock, events)
    assert letters == []
    (digest,) = fake_slack.posts("incidents")
    assert f"[SEV4] security incident ({events[0].incident_id})" in digest["text"]
    assert "203.0.113.7" not in digest["text"]


LEAK = "Admin login from 203.0.113.7 with a leaked key"


async def test_an_incident_that_turns_security_keeps_its_alerts_out_of_its_public_channel(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """Its channel was opened public, before the security alert joined: the channel's updates
    named the new alert (name, host, summary), and #incidents kept the full announcement until
    the next acknowledgement, since an alert that changes no severity edited nothing."""
    sink = sink_named(sink_settings(slack=fake_slack), engine, clock, "slack")
    story = IncidentStory()
    opened = story.fire()
    story.security, story.summary = True, LEAK
    joined = story.fire("fp2", at=T0 + timedelta(seconds=5), instance="db-prod-3")
    letters = await delivered(sink, clock, opened, joined)
    assert letters == []
    assert joined[0].incident.security
    (name,) = fake_slack.created()
    channel_text = str(fake_slack.posts(name))
    assert "security incident's alert (details withheld here)" in channel_text
    for private in ("203.0.113.7", "db-prod-3", "leaked key"):
        assert private not in channel_text
    updates = [a for m, a in fake_slack.calls if m == "chat.update"]
    assert updates
    assert updates[-1]["text"] == ":lock: *INCIDENT* - [SEV2] - security incident"


async def test_a_level_channel_that_is_no_security_contact_learns_only_that_it_is_one(
    engine: AsyncEngine, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """A policy whose level names a team's public channel posted a security incident's title and
    impact there; only the security contacts' channels get those."""
    fake_slack.add_channel("security-incidents")
    fake_slack.add_channel("payments-oncall")
    contact = Target(kind="slack", to="#security-incidents", label="Security")
    (sink,) = [
        s
        for s in build_sinks(sink_settings(slack=fake_slack), engine, clock, security_contacts=[contact])
        if s.name == "slack"
    ]
    story = IncidentStory(summary=LEAK, security=True)
    level = {
        "level": "2",
        "level_name": "payments on-call",
        "targets": json.dumps([{"kind": "slack", "to": "#payments-oncall", "label": "Payments"}]),
    }
    events = [
        *story.fire(),
        *story.escalate(SECURITY, T0 + timedelta(seconds=5), REASON),
        *story.escalate(level, T0 + timedelta(minutes=15), "not acknowledged in 15 minutes"),
    ]
    letters = await delivered(sink, clock, events)
    assert letters == []
    (told,) = fake_slack.posts("payments-oncall")
    assert told["text"].startswith(":lock: *[SEV2] security incident*")
    assert "*Why you are told:* payments on-call" in told["text"]
    for private in ("203.0.113.7", "leaked key", "#incident-"):
        assert private not in str(told)
    assert any(LEAK in post["text"] for post in fake_slack.posts("security-incidents"))
