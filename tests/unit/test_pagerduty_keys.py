"""The PagerDuty dedup_key forms: every key sevflow builds reads back as what it was built from."""

import pytest

from models.pagerduty_keys import (
    DEDUP_KEY_MAX,
    PagerDutyKey,
    escalation_key,
    incident_key,
    parse_key,
    storm_key,
)

INCIDENT = "inc-20260115-143000-3f2a9c"


def test_incident_key_is_the_incident_id() -> None:
    assert incident_key(INCIDENT) == INCIDENT
    assert parse_key(incident_key(INCIDENT)) == PagerDutyKey("incident", incident_id=INCIDENT)


def test_storm_key_round_trip() -> None:
    key = storm_key("20260115T143000")
    assert key == "sevflow-storm-20260115T143000"
    assert parse_key(key) == PagerDutyKey("storm", storm_id="20260115T143000")


@pytest.mark.parametrize(
    ("cycle", "again", "key", "reference"),
    [
        (0, False, f"{INCIDENT}/escalation/secondary", "secondary"),
        (1, False, f"{INCIDENT}/escalation/secondary/repeat1", "secondary/repeat1"),
        (0, True, f"{INCIDENT}/escalation/secondary/again", "secondary/again"),
        (2, True, f"{INCIDENT}/escalation/secondary/repeat2/again", "secondary/repeat2/again"),
    ],
)
def test_escalation_key_round_trip(cycle: int, again: bool, key: str, reference: str) -> None:
    built = escalation_key(INCIDENT, "secondary", cycle, again=again)
    assert built == key
    parsed = parse_key(built)
    assert parsed == PagerDutyKey("escalation", incident_id=INCIDENT, reference=reference)
    assert parsed.target == "secondary"


def test_escalation_of_the_own_service_has_no_target() -> None:
    """A level that pages ``again`` the incident's own service (target ``""``)."""
    parsed = parse_key(escalation_key(INCIDENT, "", again=True))
    assert (parsed.kind, parsed.incident_id, parsed.target) == ("escalation", INCIDENT, "")


def test_every_key_fits_pagerduty() -> None:
    long = "x" * 400
    for key in (incident_key(long), storm_key(long), escalation_key(INCIDENT, long, 3, again=True)):
        assert len(key) == DEDUP_KEY_MAX
    # Cut, an escalation key still names its incident.
    assert parse_key(escalation_key(INCIDENT, long)).incident_id == INCIDENT


def test_a_storm_prefix_wins_over_the_separator() -> None:
    """The receiver ignores storm digests before anything else: a storm id is never an incident."""
    assert parse_key(storm_key("a/escalation/b")).kind == "storm"
