"""Maintenance windows: scheduled, label-scoped periods in which firing alerts page nobody.

An alert that fires inside a window that matches it is *recorded* (the alerts table keeps its
state and the window that suppressed it) but opens or changes no incident, so no sink, timer or
escalation ever sees it. When the window ends, every alert it suppressed that is still firing is
applied again as if it had just arrived, and is handled normally (it opens or joins an incident
and pages). A resolution is never suppressed: resolving is not paging. An alert that was already
firing in an open incident when the window began stays in it: Alertmanager's re-sends of it change
nothing, and its resolution reaches the incident.

Matchers use the same Alertmanager syntax as the severity rules. Nothing here reads a clock.
"""

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.alert import AlertRecord, RecordPosition
from models.incident import (
    AlertState,
    Classification,
    Incident,
    LifecyclePolicy,
    alert_state,
    can_take_back,
)
from models.matchers import MatcherError, parse_matcher

__all__ = [
    "MaintenanceWindow",
    "covering_window",
    "guard_problems",
    "narrows",
    "released_record",
    "suppressed_state",
]

#: Values no real label carries, and each a different shape (a word, a digit, a space, a long
#: random string): a regex that matches one of them is taken to match any value.
_PROBES = ("x", "0", " ", "sevflow-probe-9c4e1f2a7b", "Z" * 300)


class MaintenanceWindow(BaseModel):
    """One window: alerts matching every matcher between ``starts_at`` and ``ends_at`` are held."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64)
    matchers: tuple[str, ...] = Field(min_length=1, description="Alertmanager matchers, all must match.")
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str | None = None

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for text in value:
            try:
                matcher = parse_matcher(text)
            except MatcherError as exc:
                if info.context and info.context.get(STORED):
                    continue  # read back: see stored_window
                raise ValueError(str(exc)) from None
            if matcher.name.startswith("classification."):
                # (a runbook's matcher name: a window holds alerts before they are classified)
                raise ValueError(f"{text}: a window tests labels and annotations only")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "MaintenanceWindow":
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("start and end must carry a time zone")
        if self.ends_at <= self.starts_at:
            raise ValueError("the window must end after it starts")
        return self

    def covers(self, labels: dict[str, str], annotations: dict[str, str], at: datetime) -> bool:
        """True when the window is active at ``at`` and every matcher matches; never for a window
        with a matcher that no longer reads (:meth:`unreadable`)."""
        if not self.starts_at <= at < self.ends_at:
            return False
        try:
            return all(parse_matcher(m).matches(labels, annotations) for m in self.matchers)
        except MatcherError:
            return False

    def unreadable(self) -> list[str]:
        """Why each of the window's matchers that no longer reads does not (empty for a window
        made now): one stored by an earlier sevflow whose regular expression RE2 refuses, such
        as a look-ahead Python's ``re`` accepted (:func:`stored_window`)."""
        problems = []
        for text in self.matchers:
            try:
                parse_matcher(text)
            except MatcherError as exc:
                problems.append(str(exc))
        return problems


#: Validation context of a window read back from the store (:func:`stored_window`).
STORED = "stored"


def stored_window(document: str | bytes) -> MaintenanceWindow:
    """A window as the store holds it. One made by an earlier sevflow may carry a matcher that
    no longer reads (matchers became RE2's, as Alertmanager's): refused, it would stop every
    transaction that reads the windows (each alert of the batch, quarantined) and keep the
    operator from listing or ending it. Read, it holds nothing (:meth:`MaintenanceWindow.covers`),
    its alerts are handled as if it did not exist, and it can be listed and ended."""
    return MaintenanceWindow.model_validate_json(document, context={STORED: True})


def narrows(text: str) -> bool:
    """True when the matcher pins a value: ``name="v"`` with ``v`` not empty, or ``name=~"re"``
    where ``re`` matches neither the empty string (a missing label) nor any of a few arbitrary
    probe values. A negative matcher (``!=``, ``!~``) never narrows: it matches every alert that
    lacks the label, and ``!=""`` any value."""
    matcher = parse_matcher(text)
    if matcher.op == "=":
        return matcher.value != ""
    if matcher.op == "=~":
        return not any(matcher.fullmatches(v) for v in ("", *_PROBES))
    return False


def guard_problems(window: MaintenanceWindow, max_hours: float) -> list[str]:
    """Why the window needs ``--force``; empty when it does not.

    A window is *match-all* when none of its matchers narrows (:func:`narrows`): an alert with no
    labels, or with arbitrary ones, would be held. Its length is ``ends_at - starts_at``."""
    problems = []
    if not any(narrows(m) for m in window.matchers):
        problems.append(
            'it matches every alert: no matcher pins a value (name="value" or name=~"regex" '
            "that does not match an empty or arbitrary value)"
        )
    hours = (window.ends_at - window.starts_at).total_seconds() / 3600
    if hours > max_hours:
        problems.append(f"it lasts {hours:g} hours, over the {max_hours:g} allowed without force")
    return problems


def covering_window(
    record: AlertRecord,
    windows: Iterable[MaintenanceWindow],
    previous: AlertState | None,
    incident: Incident | None = None,
    policy: LifecyclePolicy | None = None,
) -> str | None:
    """The window that holds this record, or None when it is handled normally.

    A firing record is held by the first window covering it at its arrival, unless the alert is
    already firing in ``incident`` (its group's incident) and that incident can still take it
    back (open; or, given ``policy``, resolved by hand within the reopen window: the incident
    still counts the alert firing): a window holds what starts firing in it, it does not take an
    alert out of its incident. A resolution is held only when its firing was held too (it then
    belongs to no incident).
    """
    if record.status == "resolved":
        return previous.suppressed_by if previous is not None else None
    if (
        previous is not None
        and previous.status == "firing"
        and previous.suppressed_by is None
        and incident is not None
        and previous.incident_id == incident.id
        and (
            incident.is_open
            or (policy is not None and can_take_back(incident, policy, record.received_at))
        )
    ):
        return None
    for window in windows:
        if window.covers(record.labels, record.annotations, record.received_at):
            return window.id
    return None


def suppressed_state(
    record: AlertRecord,
    cls: Classification,
    previous: AlertState | None,
    window_id: str,
    position: RecordPosition | None = None,
) -> AlertState:
    """The stored state of a held alert: recorded, in no incident."""
    state = alert_state(record, cls, None, previous, position)
    return state.model_copy(update={"suppressed_by": window_id})


def released_record(alert: AlertState, at: datetime) -> AlertRecord:
    """A held, still-firing alert as a fresh record arriving when its window ended."""
    return AlertRecord(
        fingerprint=alert.fingerprint,
        status="firing",
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        generator_url=alert.generator_url,
        receiver=alert.receiver,
        group_key=alert.group_key,
        external_url=alert.external_url,
        received_at=max(at, alert.last_received_at),
    )
