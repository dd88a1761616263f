"""The end-to-end journeys' helpers say what they claim: the policy file is the shipped playbook
policy, and a test's own time zone puts midnight where it was asked to."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.escalation import BusinessCalendar, Target, playbook_policy
from streams.escalation import parse_policy
from testkit.playbook import playbook_policy_yaml
from testkit.timezones import zone_with_midnight_at


def test_the_policy_file_is_the_playbooks_policy() -> None:
    assert parse_policy(playbook_policy_yaml()) == playbook_policy()


def test_the_policy_file_changes_only_the_calendar_and_the_manager() -> None:
    text = playbook_policy_yaml(
        timezone="Europe/Berlin",
        days="mon-sun",
        start="00:00",
        end="23:59",
        manager="{kind: pagerduty, to: manager, label: Engineering Manager}",
    )
    manager = Target(kind="pagerduty", to="manager", label="Engineering Manager")
    calendar = BusinessCalendar(
        timezone="Europe/Berlin", days=tuple(range(7)), start=time(0, 0), end=time(23, 59)
    )
    policy = parse_policy(text)
    assert policy.business_hours == calendar
    assert policy.manager_targets == (manager,)
    (level,) = [lv for lv in policy.levels if lv.name == "engineering manager"]
    assert level.targets == (manager,)
    assert policy.model_copy(
        update={"levels": playbook_policy().levels}
    ) == playbook_policy().model_copy(update={"business_hours": calendar, "manager_targets": (manager,)})


@pytest.mark.parametrize(
    "midnight",
    [
        datetime(2026, 1, 15, 3, 0, 7, tzinfo=UTC),  # local time behind UTC
        datetime(2026, 1, 15, 20, 59, 53, tzinfo=UTC),  # ahead
        datetime(2026, 1, 15, 0, 0, 0, tzinfo=UTC),  # UTC itself
    ],
)
def test_a_zone_of_its_own_has_midnight_at_the_moment_asked(tmp_path: Path, midnight: datetime) -> None:
    key = zone_with_midnight_at(tmp_path, midnight)
    with (tmp_path / key).open("rb") as tzif:
        zone = ZoneInfo.from_file(tzif, key=key)
    local = midnight.astimezone(zone)
    before = (midnight - timedelta(seconds=1)).astimezone(zone)
    assert local.time() == time(0, 0)
    assert before.time() == time(23, 59, 59)
    assert before.date() == local.date() - timedelta(days=1)
