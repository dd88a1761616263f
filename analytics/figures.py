"""Response figures per severity: MTTA, MTTR (mean, median, p90) and SLA compliance.

Every figure is computed from :class:`IncidentTimes` (:mod:`analytics.incident_times`), the few
instants of an incident that matter for response analytics. Two sources build them — the
``incident-events`` topic (:func:`~analytics.incident_times.times_from_events`) and the
incident store (``analytics.database``) — so the figures do not depend on where the data came from, and
:func:`compute_report` is a pure function of the times, the targets and ``now`` (which decides
whether an unacknowledged incident has already missed its target or is still within it).

Definitions (docs/incident-events.md, "Rebuilding incidents from the topic alone"):

- episode: a stretch of the incident that needs a response. The first starts when it opened
  (``opened_at``); each ``reopened`` event (a flap) starts another, at its ``occurred_at``;
- response of an episode (the playbook's "Response Time"): the first ``acknowledged`` or
  ``resolved`` event after the episode started (a resolution before anyone acknowledged counts);
- SLA: breached if any episode's response came after its target, or an episode still
  unanswered at ``now`` is past its target; else pending while an unanswered episode is within
  its target; else met. The escalation engine arms again on each reopening, so it judges the same
  way;
- SLA severity: the severity in effect at the response — the snapshot severity of the
  ``acknowledged`` / ``resolved`` event that was the response — as the escalation engine judges
  it (a SEV3 acknowledged in 20 minutes and raised to SEV1 afterwards met its target); an
  episode not yet responded to is judged by the latest severity;
- time to acknowledge: the first ``acknowledged`` event's ``acknowledged_at`` minus the start of
  the episode it belongs to (``opened_at`` unless nobody acknowledged before a reopening);
- time to resolve: ``resolved_at`` - ``opened_at`` of incidents whose latest state is resolved
  (the last resolution; an incident reopened since counts as open);
- severity (the row an incident is counted in): its latest severity (severities only ever rise
  within an incident).

Means hide the long tail that on-call reviews care about, so every duration also has its median
and 90th percentile (linear interpolation between closest ranks, numpy's default).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from analytics.durations import format_duration
from analytics.incident_times import Episode, IncidentTimes
from models.escalation import BusinessCalendar, EscalationPolicy, SlaTarget
from models.severity import PLAYBOOK, Severity

# The times and how events give them: analytics.incident_times.

__all__ = [
    "DurationStats",
    "Report",
    "ResponseTargets",
    "SeverityFigures",
    "SlaStatus",
    "compute_report",
    "duration_stats",
    "episode_status",
    "percentile",
    "sla_status",
]


@dataclass(frozen=True)
class ResponseTargets:
    """The response target per severity: the escalation policy's acknowledge targets (the
    playbook's SEV1 < 15 min, SEV2 < 30 min, SEV3 < 2 h, SEV4 next business day, unless
    ``SEVFLOW_ESCALATION_POLICY_FILE`` or a team's own policy sets others), so that the report,
    the postmortem and the console judge an incident by the deadline the escalation engine's
    ``sla_breached`` used; a severity the policy gives no target falls back to the playbook's.

    "Next business day" is the close of the first business day after the episode started, by
    ``calendar`` (the policy's business hours) or the team's own; ``sev4_hours`` replaces SEV4's
    with a fixed number of hours (``sevflow report --sev4-target-hours``).
    """

    sev4_hours: float | None = None
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    #: The business hours of each team that has its own (README "Teams"): its SEV4 incidents are
    #: due by the close of its next business day, as the escalation engine judges them.
    team_calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict, hash=False)
    #: The policy's acknowledge targets (``acknowledge_targets``), and each team's where its own
    #: policy file sets them: a severity missing here takes the playbook's.
    acknowledge: Mapping[Severity, SlaTarget] = field(default_factory=dict, hash=False)
    team_acknowledge: Mapping[str, Mapping[Severity, SlaTarget]] = field(
        default_factory=dict, hash=False
    )

    @classmethod
    def of_policy(cls, policy: EscalationPolicy, sev4_hours: float | None = None) -> "ResponseTargets":
        """The targets and calendars an escalation policy (and its teams') judge by."""
        return cls(
            sev4_hours,
            policy.business_hours,
            {name: own.business_hours for name, own in policy.teams.items()},
            dict(policy.acknowledge_targets),
            {name: dict(own.acknowledge_targets) for name, own in policy.teams.items()},
        )

    def __post_init__(self) -> None:
        if self.sev4_hours is not None and not (math.isfinite(self.sev4_hours) and self.sev4_hours > 0):
            raise ValueError(
                f"the SEV4 target must be a positive number of hours, not {self.sev4_hours}"
            )

    def target(self, severity: Severity, team: str | None = None) -> timedelta | None:
        """The target as a duration; None for "next business day" (see :meth:`deadline`)."""
        own = self.team_acknowledge.get(team, self.acknowledge) if team else self.acknowledge
        chosen = own.get(severity) or PLAYBOOK[severity].response_target
        if isinstance(chosen, timedelta):
            return chosen
        if severity is Severity.SEV4 and self.sev4_hours is not None:
            return timedelta(hours=self.sev4_hours)
        return None

    def label(self, severity: Severity, team: str | None = None) -> str:
        """``< 15 min``, ``< 2 hours`` (the playbook's words when the target is the playbook's),
        ``< 45 min``, ``next business day``."""
        target = self.target(severity, team)
        playbook = PLAYBOOK[severity]
        if target == playbook.response_target:
            return playbook.response_text
        return f"< {format_duration(target)}" if target is not None else "next business day"

    def deadline(self, severity: Severity, started_at: datetime, team: str | None = None) -> datetime:
        """When a response to an episode of ``severity`` (of ``team``) that started at
        ``started_at`` is due; the end of the calendar for a deadline beyond it (an opening
        stamped in the year 9999 by another producer: never due, where the report stopped at an
        OverflowError)."""
        target = self.target(severity, team)
        try:
            if target is None:
                calendar = self.team_calendars.get(team, self.calendar) if team else self.calendar
                return calendar.next_business_day_end(started_at)
            return started_at + target
        except OverflowError:
            return datetime.max.replace(tzinfo=UTC)


class SlaStatus:
    """Whether an incident met its response target (string constants, kept in report rows)."""

    MET = "met"
    BREACHED = "breached"
    PENDING = "pending"


def episode_status(
    episode: Episode, times: IncidentTimes, targets: ResponseTargets, now: datetime
) -> str:
    deadline = targets.deadline(episode.severity or times.severity, episode.started_at, times.team)
    # The playbook's targets are strict ("SEV1 < 15 min"): an answer at the deadline is late, as
    # the escalation loop judges it (models/escalation/advance.py).
    if episode.responded_at is not None:
        return SlaStatus.MET if episode.responded_at < deadline else SlaStatus.BREACHED
    return SlaStatus.BREACHED if now >= deadline else SlaStatus.PENDING


def sla_status(times: IncidentTimes, targets: ResponseTargets, now: datetime) -> str:
    """``met`` / ``breached`` once responded, judged by the severity in effect at the response;
    unresponded: ``breached`` once the target of its latest severity has passed at ``now``, else
    ``pending`` (it may still be met, so it counts neither way)."""
    statuses = [episode_status(e, times, targets, now) for e in times.response_episodes]
    for status in (SlaStatus.BREACHED, SlaStatus.PENDING):
        if status in statuses:
            return status
    return SlaStatus.MET


def percentile(sorted_values: Sequence[timedelta], fraction: float) -> timedelta:
    """The ``fraction`` quantile of ascending ``sorted_values``, interpolating linearly between
    the closest ranks (numpy's default "linear" method), to the microsecond."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not within [0, 1]")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * weight


@dataclass(frozen=True)
class DurationStats:
    """Mean, median and 90th percentile of a set of durations."""

    count: int
    mean: timedelta
    median: timedelta
    p90: timedelta


_MAX_SECONDS = (timedelta.max - timedelta(days=1)).total_seconds()


def duration_stats(values: Iterable[timedelta]) -> DurationStats | None:
    """The stats of ``values``; None when there are none (rather than a misleading zero)."""
    ordered = sorted(values)
    if not ordered:
        return None
    # In seconds: a sum of timedeltas overflows past 999,999,999 days (400 incidents resolved in
    # the year 8999 by a record stamped there), and the report then failed whole.
    mean = sum(v.total_seconds() for v in ordered) / len(ordered)
    return DurationStats(
        count=len(ordered),
        mean=timedelta(seconds=min(mean, _MAX_SECONDS)),
        median=percentile(ordered, 0.5),
        p90=percentile(ordered, 0.9),
    )


@dataclass(frozen=True)
class SeverityFigures:
    """The figures of one severity (or of all incidents: ``severity`` None)."""

    severity: Severity | None
    #: None over all incidents, and for SEV4 by the business calendar ("next business day").
    target: timedelta | None
    incidents: int
    acknowledged: int
    resolved: int
    mtta: DurationStats | None
    mttr: DurationStats | None
    sla_met: int
    sla_breached: int
    sla_pending: int

    @property
    def sla_compliance(self) -> float | None:
        """Share of decided incidents that met the target (pending ones excluded); None if none."""
        decided = self.sla_met + self.sla_breached
        return self.sla_met / decided if decided else None


@dataclass(frozen=True)
class Report:
    """Figures per severity (SEV1…SEV4, each present even when empty) and over all incidents."""

    targets: ResponseTargets
    now: datetime
    by_severity: Mapping[Severity, SeverityFigures]
    overall: SeverityFigures
    #: Records read but not used (unknown event types, invalid records, newer schema) and
    #: incidents left out (missing events), by reason: shown, never hidden.
    skipped: Mapping[str, int] = field(default_factory=dict)


def _figures(
    severity: Severity | None,
    items: Sequence[IncidentTimes],
    targets: ResponseTargets,
    now: datetime,
    team: str | None,
) -> SeverityFigures:
    statuses = [sla_status(t, targets, now) for t in items]
    acks = [t.time_to_acknowledge for t in items if t.time_to_acknowledge is not None]
    resolves = [t.time_to_resolve for t in items if t.time_to_resolve is not None]
    return SeverityFigures(
        severity=severity,
        target=targets.target(severity, team) if severity is not None else None,
        incidents=len(items),
        acknowledged=len(acks),
        resolved=len(resolves),
        mtta=duration_stats(acks),
        mttr=duration_stats(resolves),
        sla_met=statuses.count(SlaStatus.MET),
        sla_breached=statuses.count(SlaStatus.BREACHED),
        sla_pending=statuses.count(SlaStatus.PENDING),
    )


def compute_report(
    times: Iterable[IncidentTimes],
    targets: ResponseTargets,
    now: datetime,
    *,
    skipped: Mapping[str, int] | None = None,
    team: str | None = None,
) -> Report:
    """The report over ``times`` (canary incidents left out); ``now`` decides which unresponded
    incidents already breached; ``team``: the team they are all of (``report --team``), whose
    targets the table shows (each incident is judged by its own team's either way)."""
    items = sorted((t for t in times if not t.canary), key=lambda t: t.incident_id)
    by_severity = {
        severity: _figures(severity, [t for t in items if t.severity is severity], targets, now, team)
        for severity in Severity
    }
    return Report(
        targets=targets,
        now=now,
        by_severity=by_severity,
        overall=_figures(None, items, targets, now, team),
        skipped=dict(skipped or {}),
    )
