"""Escalation: the policy, its snapshot on an incident, and the pure step that advances it.

The playbook's path, the default policy (:func:`playbook_policy`, its delays settings)::

    SEV1/2   primary at once; secondary after 15 min unacknowledged; both paged again 30 min after
             the secondary's page (45 min); SEV1: the channel is asked to escalate to the
             engineering manager by hand then (automatically with ``automatic_manager``)
    SEV3     primary at once; secondary once its 2 h response target passed unacknowledged
    SEV4     nobody paged; listed in the next business day's morning digest while open
    + security contact (security@optimal-build.com, Slack #security-incidents) for security incidents
    + legal contact (legal@optimal-build.com) for data breaches (the playbook's "Legal: Data
      breaches"; a breach is a security incident too, so the security contact hears of it as well)

Data loss (a disk losing data) makes an incident SEV1 but notifies no one extra by default:
``data_loss_targets`` is empty unless a policy file names a contact.

Response targets (time to acknowledge): SEV1 15 min, SEV2 30 min, SEV3 2 h, SEV4 the end of the
next business day of the :class:`BusinessCalendar`.

How it runs (goalert's and grafana oncall's lessons): when escalation is *armed* for an incident,
:func:`arm` resolves the policy for the incident's services into one :class:`SeverityPlan` per
severity and stores that snapshot with the incident's escalation state, so editing the policy never
changes a running escalation (only the incident's *current* severity picks the plan). The state
carries the next step and the deadline the loop compares with ``now``; :func:`advance` is the one
rule, a pure function of (state, incident, now) that says what fires now and what the state
becomes. The loop runs it under the incident's lock and writes the result with a compare-and-set
on the state's version, so a restart loses nothing and a duplicate run fires nothing.

Every firing has a ``key`` unique within one escalation (``level:2``, ``repeat1:level:1``,
``sla:acknowledge``, ``contact:security``): the audit log is keyed by it, so a step fires at most
once even if two runs raced past every other guard.

Nothing here reads a clock or does I/O.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.events import EventType, IncidentState
from models.incident import Command, Incident, Outcome, annotate, refusal
from models.severity import Severity

__all__ = [
    "CANARY_SNAPSHOT",
    "DIGEST_STEP",
    "MANAGER_STEP",
    "NEXT_BUSINESS_DAY",
    "PAGERDUTY_TARGET_MAX",
    "Advance",
    "BusinessCalendar",
    "Duration",
    "EscalationLevel",
    "EscalationOverride",
    "EscalationPolicy",
    "EscalationSnapshot",
    "EscalationState",
    "EscalationStatus",
    "Firing",
    "PlaybookTimes",
    "SeverityPlan",
    "SlaTarget",
    "Target",
    "advance",
    "arm",
    "escalate_by_hand",
    "escalation_id",
    "escalation_targets",
    "format_duration",
    "parse_duration",
    "playbook_policy",
]

NEXT_BUSINESS_DAY = "next_business_day"
#: The firing key (and ``escalated`` data ``level``) of the next business day's digest listing.
DIGEST_STEP = "digest"
#: The firing key of an escalation to the manager by hand (one per episode).
MANAGER_STEP = "manual:manager"
#: Longest PagerDuty target name in a policy (see :class:`Target`).
PAGERDUTY_TARGET_MAX = 200

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _weekday(name: str) -> int:
    """``mon`` or ``monday`` (any case) → 0; anything else is refused by name."""
    text = name.strip().lower()
    for names in (_WEEKDAYS, _WEEKDAY_NAMES):
        if text in names:
            return names.index(text)
    raise ValueError(f"unknown weekday {name.strip()!r} (mon..sun, or mon-fri)")


def parse_duration(value: object) -> object:
    """``"15m"``, ``"2h"``, ``"1h30m"``, ``"1d"``, ``"45s"`` or a number of seconds → timedelta.

    Anything else is passed on for pydantic's own timedelta parsing (ISO 8601 ``PT15M``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        match = _DURATION.fullmatch(text)
        if match and text:
            d, h, m, s = (int(g) if g else 0 for g in match.groups())
            return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds: ``timedelta(minutes=90)`` → ``1h30m``."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + ("".join(parts) or "0s")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: A response target: a duration, or ``next_business_day`` (SEV4).
SlaTarget = Duration | Literal["next_business_day"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """Someone to notify at a level. ``to`` by kind:

    * ``pagerduty``: a PagerDuty service/escalation name (resolved to a routing key by the sink,
      see ``SEVFLOW_ESCALATION_PAGERDUTY_ROUTING_KEYS``; keys never travel in events);
    * ``slack``: ``#channel``, ``@user``, a user id ``U…`` or a user group mention ``<!subteam^S…>``;
    * ``email``: an address (a notification record);
    * ``phone``: a contact for manual escalation (a notification record, e.g. the engineering manager).
    """

    kind: Literal["pagerduty", "slack", "email", "phone"]
    to: str = Field(min_length=1, max_length=255)
    label: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _pagerduty_name_fits(self) -> "Target":
        # The PagerDuty sink keeps each escalation alert under ``escalation:<name>/repeat<n>``
        # (store.sinks_schema.sink_refs.key, 255 characters).
        if self.kind == "pagerduty" and len(self.to) > PAGERDUTY_TARGET_MAX:
            raise ValueError(f"a PagerDuty target's name is at most {PAGERDUTY_TARGET_MAX} characters")
        return self

    def __str__(self) -> str:
        return f"{self.kind}:{self.to}"


class EscalationLevel(_Frozen):
    """One rung: notify ``targets`` when the incident is still unacknowledged ``after`` it opened."""

    name: str = Field(min_length=1, max_length=128)
    after: Duration = Field(description="Delay from the start of the escalation (cumulative).")
    targets: tuple[Target, ...] = Field(min_length=1)
    severities: tuple[Severity, ...] = Field(
        default=(), description="Only for these severities (empty: all)."
    )
    again: bool = Field(
        default=False,
        description="Page its PagerDuty targets again as new alerts (PagerDuty folds a trigger "
        "into an open alert of the same key without notifying anyone): for someone paged before.",
    )
    by_hand: bool = Field(
        default=False,
        description="Notify nobody: ask the incident channel to escalate to the targets by hand "
        "(the playbook's manual escalation to the engineering manager).",
    )

    @field_validator("after")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("a level cannot fire before the incident opened")
        return value


class BusinessCalendar(_Frozen):
    """Business hours in one time zone, for "next business day" (SEV4)."""

    timezone: str = "UTC"
    days: tuple[int, ...] = Field(
        default=(0, 1, 2, 3, 4), description="Business weekdays, Monday=0 (names like mon also)."
    )
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: tuple[date, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: object) -> object:
        """``mon,tue``, ``[mon, tue]``, ``monday``, ranges ``mon-fri`` (wrapping: ``sun-thu``), or
        numbers; an unknown name is an error, never a guess."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            days: list[object] = []
            for item in value:
                if isinstance(item, str):
                    first, dash, last = item.partition("-")
                    start = _weekday(first)
                    if dash:
                        end = _weekday(last)
                        days.extend((start + n) % 7 for n in range((end - start) % 7 + 1))
                    else:
                        days.append(start)
                else:
                    days.append(item)
            return tuple(days)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        # YAML reads an unquoted 9:00 as the base-60 number 540, which pydantic would take as
        # seconds after midnight (00:09): refuse numbers, say how to write it.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError('write business hours as quoted "HH:MM" (YAML reads 9:00 as a number)')
        return value

    @model_validator(mode="after")
    def _sane(self) -> "BusinessCalendar":
        if not self.days or any(d not in range(7) for d in self.days):
            raise ValueError("business days must be weekdays 0 (Monday) to 6 (Sunday)")
        if self.end <= self.start:
            raise ValueError("business hours must end after they start")
        return self

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def next_business_day_end(self, moment: datetime) -> datetime:
        """The close of business of the first business day after ``moment``'s local date.

        Opened Friday 18:00 → Monday 17:00; opened Monday 03:00 → Tuesday 17:00 (the response is
        due *on* the next business day, by its close)."""
        zone = ZoneInfo(self.timezone)
        day = moment.astimezone(zone).date()
        for _ in range(366 + 7):
            day += timedelta(days=1)
            if self.is_business_day(day):
                return datetime.combine(day, self.end, zone).astimezone(moment.tzinfo)
        raise ValueError("no business day within a year: check the calendar's holidays")

    def next_business_morning(self, moment: datetime) -> datetime:
        """The opening of business on the day :meth:`next_business_day_end` falls on: when a
        next-business-day incident is listed in the morning digest (opened Friday 18:00 → Monday
        09:00)."""
        due = self.next_business_day_end(moment).astimezone(ZoneInfo(self.timezone))
        return datetime.combine(due.date(), self.start, due.tzinfo).astimezone(moment.tzinfo)


class SeverityPlan(_Frozen):
    """The escalation of one incident at one severity: what the snapshot holds."""

    levels: tuple[EscalationLevel, ...]
    repeat: int = Field(default=0, ge=0, description="Times the whole path runs again.")
    repeat_interval: Duration = Field(
        default=timedelta(minutes=15), description="Pause after the last level before a repeat."
    )
    acknowledge_target: SlaTarget | None = None
    resolve_target: SlaTarget | None = None
    digest: bool = Field(
        default=False,
        description="Listed in the morning digest of the next business day in the announcement "
        "channel while still open (SEV4).",
    )

    @property
    def steps(self) -> int:
        return len(self.levels) * (self.repeat + 1)

    def step_at(self, started_at: datetime, step: int) -> datetime:
        """When step ``step`` (0-based, across repeats) is due."""
        cycle, index = divmod(step, len(self.levels))
        cycle_length = self.levels[-1].after + self.repeat_interval
        return started_at + cycle * cycle_length + self.levels[index].after

    def step_key(self, step: int) -> str:
        cycle, index = divmod(step, len(self.levels))
        key = f"level:{index + 1}"
        return f"repeat{cycle}:{key}" if cycle else key


def _in_order(levels: tuple[EscalationLevel, ...] | None) -> None:
    """Levels are cumulative delays: each fires no earlier than the one before it (a repeat
    restarts after the last one, the longest)."""
    for before, level in zip(levels or (), (levels or ())[1:], strict=False):
        if level.after < before.after:
            raise ValueError(
                f"level {level.name!r} ({format_duration(level.after)}) comes before "
                f"{before.name!r} ({format_duration(before.after)}): order levels by 'after'"
            )


class EscalationOverride(_Frozen):
    """Replaces parts of the default path for some services and/or severities (first match wins)."""

    services: tuple[str, ...] = Field(default=(), description="Any of these services (empty: any).")
    severities: tuple[Severity, ...] = Field(default=(), description="Any of these (empty: any).")
    levels: tuple[EscalationLevel, ...] | None = None
    repeat: int | None = Field(default=None, ge=0)
    repeat_interval: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "EscalationOverride":
        _in_order(self.levels)
        return self

    def matches(self, services: Iterable[str], severity: Severity) -> bool:
        if self.severities and severity not in self.severities:
            return False
        return not self.services or bool(set(self.services) & set(services))


class EscalationPolicy(_Frozen):
    """The configured policy (YAML, see ``SEVFLOW_ESCALATION_POLICY_FILE``)."""

    levels: tuple[EscalationLevel, ...] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0)
    repeat_interval: Duration = timedelta(minutes=15)
    acknowledge_targets: dict[Severity, SlaTarget] = Field(default_factory=dict)
    resolve_targets: dict[Severity, SlaTarget] = Field(default_factory=dict)
    security_targets: tuple[Target, ...] = ()
    data_loss_targets: tuple[Target, ...] = ()
    data_breach_targets: tuple[Target, ...] = ()
    overrides: tuple[EscalationOverride, ...] = ()
    business_hours: BusinessCalendar = BusinessCalendar()
    digest_severities: tuple[Severity, ...] = Field(
        default=(),
        description="Severities listed in the next business day's morning digest (the playbook's SEV4).",
    )
    manager_targets: tuple[Target, ...] = Field(
        default=(Target(kind="phone", to="engineering-manager", label="Engineering Manager"),),
        description="Who an escalation to the manager by hand notifies (sevflow escalate ID "
        "--to manager, the API, the Slack button).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "EscalationPolicy":
        _in_order(self.levels)
        return self

    def plan(self, services: Iterable[str], severity: Severity) -> SeverityPlan:
        """The path an incident of these services at this severity follows."""
        services = tuple(services)
        levels, repeat, interval = self.levels, self.repeat, self.repeat_interval
        for override in self.overrides:
            if override.matches(services, severity):
                levels = override.levels if override.levels is not None else levels
                repeat = override.repeat if override.repeat is not None else repeat
                if override.repeat_interval is not None:
                    interval = override.repeat_interval
                break
        chosen = tuple(lv for lv in levels if not lv.severities or severity in lv.severities)
        return SeverityPlan(
            levels=chosen,
            repeat=repeat if chosen else 0,
            repeat_interval=interval,
            acknowledge_target=self.acknowledge_targets.get(severity),
            resolve_target=self.resolve_targets.get(severity),
            digest=severity in self.digest_severities,
        )

    def snapshot(self, services: Iterable[str]) -> "EscalationSnapshot":
        services = tuple(services)
        return EscalationSnapshot(
            plans={severity: self.plan(services, severity) for severity in Severity},
            security_targets=self.security_targets,
            data_loss_targets=self.data_loss_targets,
            data_breach_targets=self.data_breach_targets,
            business_hours=self.business_hours,
            manager_targets=self.manager_targets,
        )


class _Stored(BaseModel):
    """A document sevflow stores and reads back: a field a newer version added is ignored, so
    workers of two versions can run side by side during a rolling upgrade. (Policy files keep
    refusing unknown keys: a typo there must fail at start.)"""

    model_config = ConfigDict(frozen=True, extra="ignore")


class EscalationSnapshot(_Stored):
    """The policy as it applied to one incident when escalation was armed."""

    plans: dict[Severity, SeverityPlan]
    security_targets: tuple[Target, ...] = ()
    data_loss_targets: tuple[Target, ...] = ()
    data_breach_targets: tuple[Target, ...] = ()
    business_hours: BusinessCalendar = BusinessCalendar()
    manager_targets: tuple[Target, ...] = ()

    def sla_deadline(self, target: SlaTarget | None, started_at: datetime) -> datetime | None:
        if target is None:
            return None
        if target == NEXT_BUSINESS_DAY:
            return self.business_hours.next_business_day_end(started_at)
        assert isinstance(target, timedelta)
        return started_at + target


#: The snapshot of a canary incident (:mod:`models.canary`): no level, no contact, no response
#: target at any severity, so its escalation notifies nobody and records no SLA breach. It is still
#: armed and stored like any other, so the loop's scan is done with it.
CANARY_SNAPSHOT = EscalationSnapshot(plans={severity: SeverityPlan(levels=()) for severity in Severity})


@dataclass(frozen=True)
class PlaybookTimes:
    """The delays of the default policy (settings ``SEVFLOW_ESCALATION_*``, see README)."""

    #: SEV1/SEV2: the primary unacknowledged this long → the secondary is paged.
    secondary_after: timedelta = timedelta(minutes=15)
    #: SEV1/SEV2: the secondary unacknowledged this long after its page → both paged again (and,
    #: for SEV1, the channel is asked to escalate to the manager).
    repage_after: timedelta = timedelta(minutes=30)
    #: SEV3: the secondary is paged only once its response target (< 2 hours) passed.
    sev3_secondary_after: timedelta = timedelta(hours=2)
    #: SEV1: the manager is paged automatically at the re-page instead of being escalated to by
    #: hand (off: the playbook's "Manual escalation for SEV1").
    automatic_manager: bool = False


def playbook_policy(times: PlaybookTimes | None = None) -> EscalationPolicy:
    """The incident-response playbook's escalation path, response targets and contacts, read per
    severity (its appendix: primary "auto-escalates after 15 min", secondary "after 30 min",
    engineering manager "manual escalation for SEV1"; its SEV table's response targets)::

        SEV1  primary at once; secondary at 15m; both again at 45m, channel asked for the manager
        SEV2  primary at once; secondary at 15m; both again at 45m
        SEV3  primary at once; secondary when its 2h target passed unacknowledged
        SEV4  nobody paged; listed in the next business day's morning digest
    """
    times = times or PlaybookTimes()
    urgent = (Severity.SEV1, Severity.SEV2)
    primary = Target(kind="pagerduty", to="primary", label="Primary On-Call")
    secondary = Target(kind="pagerduty", to="secondary", label="Secondary On-Call")
    manager = Target(kind="phone", to="engineering-manager", label="Engineering Manager")
    repage = times.secondary_after + times.repage_after
    levels = [
        EscalationLevel(
            name="primary on-call",
            after=timedelta(0),
            targets=(primary,),
            severities=(*urgent, Severity.SEV3),
        ),
        EscalationLevel(
            name="secondary on-call",
            after=times.secondary_after,
            targets=(secondary,),
            severities=urgent,
        ),
        EscalationLevel(
            name="primary and secondary on-call again",
            after=repage,
            targets=(primary, secondary),
            severities=urgent,
            again=True,
        ),
        EscalationLevel(
            name="engineering manager",
            after=repage,
            targets=(manager,),
            severities=(Severity.SEV1,),
            by_hand=not times.automatic_manager,
        ),
        EscalationLevel(
            name="secondary on-call",
            after=times.sev3_secondary_after,
            targets=(secondary,),
            severities=(Severity.SEV3,),
        ),
    ]
    levels.sort(key=lambda level: level.after)  # (a stable sort: settings may reorder them)
    return EscalationPolicy(
        levels=tuple(levels),
        digest_severities=(Severity.SEV4,),
        manager_targets=(manager,),
        acknowledge_targets={
            Severity.SEV1: timedelta(minutes=15),
            Severity.SEV2: timedelta(minutes=30),
            Severity.SEV3: timedelta(hours=2),
            Severity.SEV4: NEXT_BUSINESS_DAY,
        },
        security_targets=(
            Target(kind="email", to="security@optimal-build.com", label="Security"),
            Target(kind="slack", to="#security-incidents", label="Security"),
        ),
        # The playbook's "Legal | legal@optimal-build.com | Data breaches": legal hears of a
        # breach (unauthorized data access), not of data lost by a failing disk.
        data_breach_targets=(Target(kind="email", to="legal@optimal-build.com", label="Legal"),),
    )


class EscalationStatus(StrEnum):
    """``active``: levels still to fire; ``exhausted``: every level fired, still unacknowledged;
    ``acknowledged`` / ``resolved``: stopped (SLA figures recorded)."""

    ACTIVE = "active"
    EXHAUSTED = "exhausted"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def escalation_id(incident_id: str, generation: int) -> str:
    """The fence of one escalation run: a reopened incident (a flap) gets a new one."""
    return f"{incident_id}#{generation}"


class EscalationState(_Stored):
    """The stored escalation of one incident (one row, updated by compare-and-set on ``version``)."""

    incident_id: str
    generation: int = Field(ge=0, description="The incident's flap count when armed.")
    started_at: datetime
    snapshot: EscalationSnapshot
    severity: Severity = Field(description="The severity whose plan is in use.")
    next_step: int = 0
    status: EscalationStatus = EscalationStatus.ACTIVE
    security_notified: bool = False
    data_loss_notified: bool = False
    data_breach_notified: bool = False
    acknowledge_breached: bool = False
    resolve_breached: bool = False
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    seen_sequence: int = Field(
        default=0, description="The incident's last event sequence the loop has examined."
    )
    fired: dict[str, str] = Field(
        default_factory=dict,
        description="Firing key → the level it notified (cycle:name), for a severity's plan "
        "that orders other levels (empty in states stored before it: rebuilt from next_step).",
    )
    version: int = 0

    @property
    def escalation_id(self) -> str:
        return escalation_id(self.incident_id, self.generation)

    @property
    def plan(self) -> SeverityPlan:
        return self.snapshot.plans[self.severity]

    @property
    def next_level_at(self) -> datetime | None:
        """When the next level fires (None: none left, or stopped)."""
        if self.status is not EscalationStatus.ACTIVE or self.next_step >= self.plan.steps:
            return None
        return self.plan.step_at(self.started_at, self.next_step)

    @property
    def next_level(self) -> EscalationLevel | None:
        if self.next_level_at is None:
            return None
        return self.plan.levels[self.next_step % len(self.plan.levels)]

    @property
    def acknowledge_due_at(self) -> datetime | None:
        if self.acknowledge_breached or self.status in (
            EscalationStatus.ACKNOWLEDGED,
            EscalationStatus.RESOLVED,
        ):
            return None
        return self.snapshot.sla_deadline(self.plan.acknowledge_target, self.started_at)

    @property
    def resolve_due_at(self) -> datetime | None:
        if self.resolve_breached or self.status is EscalationStatus.RESOLVED:
            return None
        return self.snapshot.sla_deadline(self.plan.resolve_target, self.started_at)

    @property
    def digest_due_at(self) -> datetime | None:
        """When the incident is listed in the morning digest (None: its plan has none, it was
        listed, or it resolved)."""
        if not self.plan.digest or DIGEST_STEP in self.fired or self.status is EscalationStatus.RESOLVED:
            return None
        return self.snapshot.business_hours.next_business_morning(self.started_at)

    @property
    def due_at(self) -> datetime | None:
        """The earliest moment something may fire: what the loop's scan compares with ``now``."""
        timers = (self.next_level_at, self.acknowledge_due_at, self.resolve_due_at, self.digest_due_at)
        moments = [m for m in timers if m]
        return min(moments) if moments else None

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return self.acknowledged_at - self.started_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self.resolved_at - self.started_at if self.resolved_at else None


@dataclass(frozen=True)
class Firing:
    """One thing that fires now: an ``escalated`` or ``sla_breached`` annotation of the incident."""

    key: str
    type: EventType
    reason: str
    data: dict[str, str]
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Advance:
    """The result of :func:`advance`: what fires now and the state to store."""

    state: EscalationState
    firings: tuple[Firing, ...]

    @property
    def changed(self) -> bool:
        return bool(self.firings)


def arm(incident: Incident, policy: EscalationPolicy, now: datetime) -> EscalationState:
    """Start escalating ``incident``: snapshot the policy for its services.

    The first escalation of an incident starts when it opened (a worker that arms late, after a
    restart, still fires on the original deadlines); a reopened incident's when it reopened
    (``now`` only for an incident that does not record it)."""
    started = incident.opened_at if incident.flaps == 0 else (incident.reopened_at or now)
    return EscalationState(
        incident_id=incident.id,
        generation=incident.flaps,
        started_at=started,
        snapshot=CANARY_SNAPSHOT if incident.canary else policy.snapshot(incident.services),
        severity=incident.severity,
    )


def _targets_json(targets: Iterable[Target]) -> str:
    return json.dumps([t.model_dump(exclude_none=True) for t in targets], separators=(",", ":"))


def escalation_targets(data: Mapping[str, str]) -> list[Target]:
    """The targets an ``escalated`` event's ``data`` names. Lenient, since the sinks read events
    other versions wrote: fields a newer version added are ignored, and an unreadable target is
    left out rather than failing the event."""
    try:
        raw = json.loads(data.get("targets", "[]"))
    except json.JSONDecodeError:
        return []
    targets: list[Target] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            targets.append(
                Target.model_validate({k: item[k] for k in ("kind", "to", "label") if k in item})
            )
        except ValidationError:
            continue
    return targets


def _identity(plan: SeverityPlan, step: int) -> str:
    """Which notification a step is, whatever the plan: the same level in the same cycle."""
    cycle, index = divmod(step, len(plan.levels))
    return f"{cycle}:{plan.levels[index].name}"


def _fired(state: EscalationState) -> dict[str, str]:
    """What this escalation has notified, by firing key."""
    if state.fired or not state.next_step:
        return dict(state.fired)
    plan = state.plan  # a state stored before ``fired``: its steps so far, in its own plan
    return {plan.step_key(s): _identity(plan, s) for s in range(min(state.next_step, plan.steps))}


def _level_firing(
    state: EscalationState,
    step: int,
    contacts: tuple[Target, ...],
    key: str,
    contacts_reason: str = "",
) -> Firing:
    plan = state.plan
    cycle, index = divmod(step, len(plan.levels))
    level = plan.levels[index]
    targets = level.targets + tuple(t for t in contacts if t not in level.targets)
    waited = format_duration(level.after)
    reason = (
        f"notifying {level.name}"
        if level.after == timedelta(0) and cycle == 0
        else f"unacknowledged for {waited}: escalating to {level.name}"
    )
    if level.by_hand:
        reason = f"unacknowledged for {waited}: escalate to {level.name} by hand"
    if cycle:
        reason += f" (repeat {cycle} of {plan.repeat})"
    data = {
        "escalation_id": state.escalation_id,
        "step": key,
        "level": str(index + 1),
        "level_name": level.name,
        "cycle": str(cycle),
        "targets": _targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    if level.again:
        data["again"] = "1"
    if contacts and contacts_reason:
        # Why the contacts riding along are told: the reason above is the level's own.
        data["contacts_reason"] = contacts_reason
    if level.by_hand:
        # Asked, not notified: the sinks page and post to nobody (a contact riding along with
        # the level is still notified, on an event of its own next time: see advance).
        data["by_hand"] = "1"
        return Firing(key, EventType.ESCALATED, reason, data)
    return Firing(key, EventType.ESCALATED, reason, data, targets)


def _digest_firing(state: EscalationState, at: datetime) -> Firing:
    day = at.astimezone(ZoneInfo(state.snapshot.business_hours.timezone)).date()
    data = {
        "escalation_id": state.escalation_id,
        "step": DIGEST_STEP,
        "level": DIGEST_STEP,
        "level_name": "next business day digest",
        "cycle": "0",
        "targets": "[]",
        "targets_text": "",
        "digest_day": day.isoformat(),
        "digest_at": at.isoformat(),
    }
    reason = f"{state.severity}: listed in the morning digest of {day.isoformat()}"
    return Firing(DIGEST_STEP, EventType.ESCALATED, reason, data)


def escalate_by_hand(
    incident: Incident, command: Command, targets: tuple[Target, ...], now: datetime
) -> tuple[Outcome, Firing] | str:
    """Apply an ``escalate --to manager`` command (the CLI, the API, the Slack button): an
    ``escalated`` event naming ``targets`` (the policy's ``manager_targets``), or why not.

    The episode rule of every command holds (:func:`models.incident.refusal`); a resolved
    incident has nobody left to escalate to. Once per episode is the caller's check (the
    escalation log, key :data:`MANAGER_STEP`)."""
    if (refused := refusal(incident, command)) is not None:
        return refused
    if incident.state is IncidentState.RESOLVED:
        return "the incident is resolved: nothing to escalate"
    if not targets:
        return "the escalation policy names no manager (manager_targets)"
    data = {
        "escalation_id": escalation_id(incident.id, incident.flaps),
        "step": MANAGER_STEP,
        "level": "manager",
        "level_name": "engineering manager",
        "cycle": "0",
        "targets": _targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    who = command.actor.name or command.actor.via
    reason = f"escalated to the engineering manager by hand (by {who})"
    outcome = annotate(incident, EventType.ESCALATED, command.actor, now, reason=reason, data=data)
    return outcome, Firing(MANAGER_STEP, EventType.ESCALATED, reason, data, targets)


def _contact_firing(state: EscalationState, contact: str, targets: tuple[Target, ...]) -> Firing:
    data = {
        "escalation_id": state.escalation_id,
        "step": f"contact:{contact}",
        "level": contact,
        "level_name": f"{contact} contact",
        "cycle": "0",
        "targets": _targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    return Firing(f"contact:{contact}", EventType.ESCALATED, _contact_reason(contact), data, targets)


def _contact_reason(contact: str) -> str:
    """Why a contact (``security``, ``data_loss``, ``data_breach``) is told."""
    return f"{contact.replace('_', '-')} incident: notifying the {contact.replace('_', ' ')} contact"


def _sla_firing(
    state: EscalationState, kind: Literal["acknowledge", "resolve"], deadline: datetime, late: str
) -> Firing:
    target = state.plan.acknowledge_target if kind == "acknowledge" else state.plan.resolve_target
    target_text = target if isinstance(target, str) else format_duration(target or timedelta(0))
    verb = "acknowledged" if kind == "acknowledge" else "resolved"
    data = {
        "escalation_id": state.escalation_id,
        "kind": kind,
        "severity": state.severity.value,
        "target": target_text.replace("_", " "),
        "deadline": deadline.isoformat(),
    }
    reason = f"{state.severity} {late or 'not ' + verb} within its target ({data['target']})"
    return Firing(f"sla:{kind}", EventType.SLA_BREACHED, reason, data)


def advance(state: EscalationState, incident: Incident, now: datetime) -> Advance:
    """What fires for ``incident`` at ``now`` and the state after it (pure, idempotent).

    * Acknowledged or resolved: no level ever fires again; the times to acknowledge / resolve are
      recorded, and an SLA breach the loop did not see in time (it was down) is recorded once,
      judged when the answer is first seen.
    * Open (triggered or acknowledged): the contacts its flags call for (security, data loss, data
      breach) are notified once.
    * Still triggered: every level whose deadline passed fires once, in order (after a long outage
      several fire in one go: each was owed), then the acknowledge target is checked.
    * The plan follows the incident's current severity (raised SEV3 → SEV1 adds the SEV1 levels).

    Calling it again with the returned state and the same ``now`` fires nothing.
    """
    firings: list[Firing] = []
    updates: dict[str, Any] = {}
    fired = _fired(state)
    if incident.state is not IncidentState.RESOLVED and incident.severity is not state.severity:
        # Another plan: its levels are walked from the start, each skipped if it was notified
        # already (by name and cycle), so one the old plan lacked still fires.
        updates.update(severity=incident.severity, next_step=0, fired=fired)
    current = state.model_copy(update=updates)

    ack_due = current.snapshot.sla_deadline(current.plan.acknowledge_target, current.started_at)
    resolve_due = current.snapshot.sla_deadline(current.plan.resolve_target, current.started_at)

    # The contacts its flags call for (security, data loss, data breach) are told once while open,
    # acknowledged or not: a flag can arrive with an alert after the acknowledgement.
    contacts: list[tuple[str, tuple[Target, ...]]] = []
    if incident.state is not IncidentState.RESOLVED:
        if incident.security and not current.security_notified:
            updates["security_notified"] = True  # even with no contact: nothing left to do
            if current.snapshot.security_targets:
                contacts.append(("security", current.snapshot.security_targets))
        if incident.data_loss and not current.data_loss_notified:
            updates["data_loss_notified"] = True
            if current.snapshot.data_loss_targets:
                contacts.append(("data_loss", current.snapshot.data_loss_targets))
        if incident.data_breach and not current.data_breach_notified:
            updates["data_breach_notified"] = True
            if current.snapshot.data_breach_targets:
                contacts.append(("data_breach", current.snapshot.data_breach_targets))
    extra = tuple(t for _, ts in contacts for t in ts)

    if incident.state is IncidentState.TRIGGERED:
        step, plan = current.next_step, current.plan
        notified = set(fired.values())
        while step < plan.steps and plan.step_at(current.started_at, step) <= now:
            identity = _identity(plan, step)
            if identity not in notified:
                key = plan.step_key(step)
                if key in fired:  # that position notified another level under another plan
                    key = f"{key}@{current.severity}"
                # The contacts ride along on the first level that notifies now.
                by_hand = plan.levels[step % len(plan.levels)].by_hand
                riding = () if by_hand else extra
                why = "; ".join(_contact_reason(name) for name, _ in contacts)
                firings.append(_level_firing(current, step, riding, key, why))
                extra = extra if by_hand else ()
                fired[key] = identity
                notified.add(identity)
            step += 1
        updates["fired"] = fired
        if extra:  # no level fired now: notify the contacts on their own
            firings.extend(_contact_firing(current, name, targets) for name, targets in contacts)
        updates["next_step"] = step
        updates["status"] = EscalationStatus.ACTIVE if step < plan.steps else EscalationStatus.EXHAUSTED
        if ack_due is not None and ack_due <= now and not current.acknowledge_breached:
            firings.append(_sla_firing(current, "acknowledge", ack_due, ""))
            updates["acknowledge_breached"] = True
    else:
        if extra:
            firings.extend(_contact_firing(current, name, targets) for name, targets in contacts)
        resolved = incident.state is IncidentState.RESOLVED
        updates["status"] = EscalationStatus.RESOLVED if resolved else EscalationStatus.ACKNOWLEDGED
        acked_at = incident.acknowledged_at
        if acked_at is not None and acked_at >= current.started_at:
            updates["acknowledged_at"] = acked_at
        if resolved and incident.resolved_at is not None:
            updates["resolved_at"] = incident.resolved_at
        answered = acked_at if acked_at is not None and acked_at >= current.started_at else None
        answered = answered or (incident.resolved_at if resolved else None)
        # Judged once, when the answer is first seen: a severity raised after the
        # acknowledgement does not make that acknowledgement late.
        first_seen = state.status in (EscalationStatus.ACTIVE, EscalationStatus.EXHAUSTED)
        if (
            first_seen
            and ack_due is not None
            and not current.acknowledge_breached
            and answered is not None
            and answered > ack_due
        ):
            late = f"answered after {format_duration(answered - current.started_at)}, not"
            firings.append(_sla_firing(current, "acknowledge", ack_due, late))
            updates["acknowledge_breached"] = True

    # The next business day's morning digest lists it while it is open (SEV4).
    digest_at = current.digest_due_at
    if incident.state is not IncidentState.RESOLVED and digest_at is not None and digest_at <= now:
        firings.append(_digest_firing(current, digest_at))
        fired[DIGEST_STEP] = DIGEST_STEP
        updates["fired"] = fired

    # Resolve target: breached while open past it, or resolved late while the loop was away.
    if resolve_due is not None and not current.resolve_breached:
        resolved_at = incident.resolved_at if incident.state is IncidentState.RESOLVED else None
        if resolved_at is None and resolve_due <= now:
            firings.append(_sla_firing(current, "resolve", resolve_due, ""))
            updates["resolve_breached"] = True
        elif resolved_at is not None and resolved_at > resolve_due:
            late = f"resolved after {format_duration(resolved_at - current.started_at)}, not"
            firings.append(_sla_firing(current, "resolve", resolve_due, late))
            updates["resolve_breached"] = True

    new_state = state.model_copy(update=updates)
    return Advance(new_state, tuple(firings))
