"""The escalation policy: who is notified at which level, and its snapshot on an incident.

:class:`EscalationPolicy` is what the policy file (``SEVFLOW_ESCALATION_POLICY_FILE``) or the
playbook's default (:mod:`models.escalation.playbook`) describes; :meth:`EscalationPolicy.plan`
resolves it for an incident's services into one :class:`SeverityPlan` per severity, and
:meth:`EscalationPolicy.snapshot` stores those plans with the incident's escalation state
(:class:`EscalationSnapshot`), so editing the policy never changes a running escalation.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from models.escalation._base import Frozen, Stored
from models.escalation.calendar import (
    NEXT_BUSINESS_DAY,
    BusinessCalendar,
    Duration,
    SlaTarget,
    format_duration,
)
from models.severity import Severity

__all__ = [
    "CANARY_SNAPSHOT",
    "PAGERDUTY_TARGET_MAX",
    "EscalationLevel",
    "EscalationOverride",
    "EscalationPolicy",
    "EscalationSnapshot",
    "SeverityPlan",
    "Target",
]

#: Longest PagerDuty target name in a policy (see :class:`Target`).
PAGERDUTY_TARGET_MAX = 200


class Target(Frozen):
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


class EscalationLevel(Frozen):
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


class SeverityPlan(Frozen):
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


class EscalationOverride(Frozen):
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


class EscalationPolicy(Frozen):
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
    emailing: bool = Field(
        default=False,
        description="SMTP is configured (SEVFLOW_SMTP_HOST: the email sink runs), so email "
        "contacts are emailed; the escalated events' reasons say so, or 'not emailed (no SMTP "
        "configured)'. Set at start from the settings (load_policy), never by a policy file.",
    )
    teams: dict[str, "EscalationPolicy"] = Field(
        default_factory=dict,
        description="The policy of each team that has one of its own (its policy file, or its "
        "overrides and business hours over this one), by team name. Set at start from the teams "
        "file (load_policy), never by a policy file.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "EscalationPolicy":
        _in_order(self.levels)
        return self

    def for_team(self, team: str) -> "EscalationPolicy":
        """The policy an incident of ``team`` follows: the team's own, else this one (the
        default team's, and that of a team with neither a policy nor business hours)."""
        return self.teams.get(team, self)

    def adapted(
        self,
        overrides: Iterable[EscalationOverride] = (),
        business_hours: BusinessCalendar | None = None,
    ) -> "EscalationPolicy":
        """This policy with ``overrides`` tried before its own (first match wins) and, when
        given, other business hours: a team's variant of the default policy."""
        return self.model_copy(
            update={
                "overrides": (*overrides, *self.overrides),
                "business_hours": business_hours or self.business_hours,
                "teams": {},
            }
        )

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
        """The plans of this policy for ``services``, one per severity, as an incident's
        escalation is armed with them: made once per policy and the services its overrides
        name. The plans depend on the services only through them (EscalationOverride.matches),
        so the incidents of services no override names (most, when services are many: a
        Kubernetes namespace each) share one snapshot."""
        services = tuple(services)
        named = frozenset(s for s in services if any(s in o.services for o in self.overrides))
        key = (id(self), named)
        kept = _SNAPSHOTS.get(key)
        if kept is not None and kept[0] is self:
            return kept[1]
        made = self._snapshot(services)
        if len(_SNAPSHOTS) >= _SNAPSHOTS_MAX:
            _SNAPSHOTS.clear()
        _SNAPSHOTS[key] = (self, made)
        return made

    def _snapshot(self, services: tuple[str, ...]) -> "EscalationSnapshot":
        return EscalationSnapshot(
            plans={severity: self.plan(services, severity) for severity in Severity},
            security_targets=self.security_targets,
            data_loss_targets=self.data_loss_targets,
            data_breach_targets=self.data_breach_targets,
            business_hours=self.business_hours,
            manager_targets=self.manager_targets,
        )


#: Snapshots made lately (:meth:`EscalationPolicy.snapshot`), by the policy's identity and the
#: services its overrides name: every incident of those services armed under the same policy gets
#: an equal snapshot, and building one (a plan per severity, each a validated model) was a fifth of
#: arming a new incident's escalation. The entry keeps its policy alive, so an id is never reused
#: while it is kept; cleared when full.
_SNAPSHOTS: dict[tuple[int, frozenset[str]], tuple[EscalationPolicy, "EscalationSnapshot"]] = {}
_SNAPSHOTS_MAX = 1_024


class EscalationSnapshot(Stored):
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
