"""The audit log and the guard on maintenance windows: the match-all rule, --force, the rows
written by the CLI and by the worker applying a manual command, and ``sevflow audit``."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from models.audit import ACTIONS, AuditEntry
from models.events import Actor
from models.incident import Command, LifecyclePolicy
from models.maintenance import MaintenanceWindow, guard_problems, narrows
from sevflow.admin import NeedsForce, Who, create_window, end_window
from store import audit
from store.incidents import IncidentStore
from streams.pipeline import Pipeline
from streams.rules import load_rules
from tests.builders import T0, alert
from tests.unit.test_maintenance import sevflow


@pytest.mark.parametrize(
    ("matcher", "narrow"),
    [
        ('service="checkout"', True),
        ('service=~"checkout|payments"', True),
        ('service=~"check.*"', True),
        ('alertname=~".*"', False),  # matches an alert without the label
        ('service=~".+"', False),  # any value
        ('service=~"[a-z0-9 -]+"', False),
        ('service=""', False),  # alerts without the label
        ('service!="checkout"', False),  # every other alert
        ('service!~"checkout"', False),
        ('service!=""', False),  # any value
        ('annotations.team="db"', True),
    ],
)
def test_a_matcher_narrows_only_when_it_pins_a_value(matcher: str, narrow: bool) -> None:
    assert narrows(matcher) is narrow


def window(*matchers: str, hours: float = 2) -> MaintenanceWindow:
    return MaintenanceWindow(
        id="mw_1", matchers=matchers, starts_at=T0, ends_at=T0 + timedelta(hours=hours)
    )


def test_match_all_and_long_windows_need_force() -> None:
    assert guard_problems(window('service="checkout"'), 24) == []
    # One narrowing matcher is enough: the window holds only that service's alerts.
    assert guard_problems(window('service="checkout"', 'env!="dev"'), 24) == []
    (broad,) = guard_problems(window('alertname=~".*"'), 24)
    assert "matches every alert" in broad
    assert len(guard_problems(window('env!="prod"', 'team!~"db"'), 24)) == 1
    (long,) = guard_problems(window('service="checkout"', hours=25), 24)
    assert "25 hours" in long
    assert len(guard_problems(window('service=~".+"', hours=48), 24)) == 2


async def test_a_refused_window_is_not_stored_nor_recorded(engine: AsyncEngine) -> None:
    who = Who("ops", "api")
    with pytest.raises(NeedsForce, match="matches every alert"):
        await create_window(
            engine, window('alertname=~".*"'), force=False, max_hours=24, who=who, now=T0
        )
    assert await audit.listing(engine) == []
    forced = await create_window(
        engine, window('alertname=~".*"'), force=True, max_hours=24, who=who, now=T0
    )
    assert len(forced) == 1
    await end_window(engine, "mw_1", who=Who("alice", "cli", note="done early"), now=T0)
    created, ended = await audit.listing(engine)
    assert (created.action, created.actor, created.via, created.target) == (
        "maintenance.created",
        "ops",
        "api",
        "mw_1",
    )
    assert created.details["matchers"] == ['alertname=~".*"']
    assert created.details["hours"] == 2
    assert created.details["forced"] == forced
    assert (ended.action, ended.actor, ended.note) == ("maintenance.ended", "alice", "done early")
    assert [e.action for e in await audit.listing(engine, action="maintenance.ended")] == [
        "maintenance.ended"
    ]
    assert await audit.listing(engine, since=T0 + timedelta(seconds=1)) == []


async def test_an_applied_manual_command_is_recorded_once(engine: AsyncEngine) -> None:
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    (opened,) = await pipeline.process_alerts([alert("ApiDown", severity="sev2")])
    command = Command(
        command_id="api:1",
        action="resolve",
        incident_id=opened.incident_id,
        actor=Actor(via="api", name="oncall-bot", note="<!channel>"),
        requested_at=T0 + timedelta(minutes=5),
    )
    assert (await pipeline.process_command(command)).applied
    assert not (await pipeline.process_command(command)).applied  # the same command again
    (entry,) = await audit.listing(engine)
    assert entry == AuditEntry(
        at=T0 + timedelta(minutes=5),
        action="incident.resolved",
        actor="oncall-bot",
        via="api",
        target=opened.incident_id,
        details={"command_id": "api:1"},
        note="<!channel>",
    )


def test_cli_refuses_a_broad_window_without_force_and_audits_it(tmp_path: Path) -> None:
    assert sevflow(tmp_path, "init-db").returncode == 0
    refused = sevflow(tmp_path, "maintenance", "add", "-m", 'alertname=~".*"', "--end", "+1h")
    assert refused.returncode == 2
    assert "matches every alert" in refused.stderr
    assert "--force" in refused.stderr
    too_long = sevflow(tmp_path, "maintenance", "add", "-m", 'service="db"', "--end", "+2d")
    assert too_long.returncode == 2
    assert "48 hours" in too_long.stderr
    assert "no maintenance windows" in sevflow(tmp_path, "maintenance", "list").stdout
    forced = sevflow(tmp_path, "maintenance", "add", "-m", 'alertname=~".*"', "--end", "+1h", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "forced: it matches every alert" in forced.stderr
    shown = sevflow(tmp_path, "audit", "--action", "maintenance")
    assert shown.returncode == 0, shown.stderr
    (_header, row) = shown.stdout.splitlines()
    assert "maintenance.created" in row
    assert "(cli)" in row
    assert json.dumps('alertname=~".*"') in row
    assert "no audit entries" in sevflow(tmp_path, "audit", "--action", "dlq").stdout
    assert "no audit entries" in sevflow(tmp_path, "audit", "--since", "+1h").stdout
    for far in ("-2900000d", "-99999999999d"):  # before the year 1: an OverflowError's traceback
        refused = sevflow(tmp_path, "audit", f"--since={far}")
        assert (refused.returncode, refused.stderr.strip()) == (
            2,
            f"sevflow audit: '{far}' is too far in the past",
        )


async def test_each_manual_command_is_recorded_under_an_action_the_listing_knows(
    engine: AsyncEngine,
) -> None:
    """A status-page publication was recorded as "incident.publishd" (the command's name with a
    "d"), which no ``--action`` family found; a note as "incident.noted", missing from ACTIONS."""
    pipeline = Pipeline(IncidentStore(engine), load_rules(None), LifecyclePolicy())
    (opened,) = await pipeline.process_alerts([alert("ApiDown", severity="sev2")])
    actor = Actor(via="api", name="ops")
    at = T0 + timedelta(minutes=5)
    commands = [
        Command(command_id="c-note", action="note", incident_id=opened.incident_id, actor=actor,
                requested_at=at, text="looking"),
        Command(command_id="c-pub", action="publish", incident_id=opened.incident_id, actor=actor,
                requested_at=at, public_title="Checkout issue", public_body="We are on it."),
        Command(command_id="c-ack", action="acknowledge", incident_id=opened.incident_id,
                actor=actor, requested_at=at),
    ]  # fmt: skip
    for command in commands:
        assert (await pipeline.process_command(command)).applied, command.action
    recorded = [e.action for e in await audit.listing(engine)]
    assert sorted(recorded) == ["incident.acknowledged", "incident.noted", "statuspage.published"]
    assert set(recorded) <= set(ACTIONS)
    assert [e.action for e in await audit.listing(engine, action="statuspage")] == [
        "statuspage.published"
    ]
