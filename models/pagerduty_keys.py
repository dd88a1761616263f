"""The PagerDuty ``dedup_key`` forms sevflow writes, built and read back in one place.

PagerDuty folds every trigger with the same ``dedup_key`` into one alert, and its webhooks hand
the key back (``data.incident_key``) when someone acknowledges or resolves there. The sinks build
the keys (sinks/pagerduty_format.py) and the receiver reads them
(receiver/callbacks/pagerduty.py), so both use this module, and a change of form cannot leave one
side behind.

- ``<incident>``: the incident's own alert (a canary incident's too);
- ``<incident>/escalation/<target>[/repeat<n>][/again]``: an escalation level's page on
  ``target``'s service; a repeat of the path (cycle n ≥ 1) or a level that pages again opens a
  new alert;
- ``sevflow-storm-<storm>``: an alert storm's digest.

Every key is cut to PagerDuty's 255 characters (:data:`DEDUP_KEY_MAX`); incident ids are at most
64 characters of ``[A-Za-z0-9_.:-]`` (never a ``/``), so the cut only ever shortens a target name.
"""

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEDUP_KEY_MAX",
    "ESCALATION_SEPARATOR",
    "STORM_PREFIX",
    "PagerDutyKey",
    "escalation_key",
    "incident_key",
    "parse_key",
    "storm_key",
]

#: ``dedup_key`` "Maximum of 255 characters":
#: https://developer.pagerduty.com/docs/send-alert-event (docs/events-API-v2/02-Trigger-Events.md).
DEDUP_KEY_MAX = 255
#: What separates the incident id from the target in an escalation level's key.
ESCALATION_SEPARATOR = "/escalation/"
#: The start of a storm digest's key.
STORM_PREFIX = "sevflow-storm-"

KeyKind = Literal["incident", "escalation", "storm"]


@dataclass(frozen=True)
class PagerDutyKey:
    """A ``dedup_key`` read back: which alert of sevflow's it names.

    ``incident_id`` is set for the incident and escalation forms, ``storm_id`` for a digest;
    ``reference`` is an escalation alert's name in the delivery log (``secondary``,
    ``secondary/repeat1``): everything after :data:`ESCALATION_SEPARATOR`."""

    kind: KeyKind
    incident_id: str | None = None
    storm_id: str | None = None
    reference: str = ""

    @property
    def target(self) -> str:
        """The escalation target whose service was paged (``""`` for the other forms)."""
        return self.reference.partition("/")[0]


def incident_key(incident_id: str) -> str:
    """The dedup_key of the incident's own alert: its id."""
    return incident_id[:DEDUP_KEY_MAX]


def storm_key(storm_id: str) -> str:
    """The dedup_key of a storm's digest alert."""
    return f"{STORM_PREFIX}{storm_id}"[:DEDUP_KEY_MAX]


def escalation_key(incident_id: str, target: str, cycle: int = 0, *, again: bool = False) -> str:
    """The dedup_key of the alert an escalation opens on ``target``'s service; a repeat of the
    path (``cycle`` ≥ 1) or a level that pages ``again`` opens a new alert, since PagerDuty folds
    a trigger into an open alert of the same key without notifying anyone again."""
    suffix = (f"/repeat{cycle}" if cycle else "") + ("/again" if again else "")
    return f"{incident_id}{ESCALATION_SEPARATOR}{target}{suffix}"[:DEDUP_KEY_MAX]


def parse_key(key: str) -> PagerDutyKey:
    """Which alert ``key`` names. A storm's prefix is read first, then the escalation separator;
    anything else is an incident's own key (the caller checks it is a well-formed incident id)."""
    if key.startswith(STORM_PREFIX):
        return PagerDutyKey("storm", storm_id=key.removeprefix(STORM_PREFIX))
    incident_id, separator, reference = key.partition(ESCALATION_SEPARATOR)
    if separator:
        return PagerDutyKey("escalation", incident_id=incident_id, reference=reference)
    return PagerDutyKey("incident", incident_id=key)
