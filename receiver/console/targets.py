"""How much of an incident's response target is left: the escalation policy's acknowledge targets
(the playbook's SEV1 < 15 min, SEV2 < 30 min, SEV3 < 2 hours, SEV4 next business day, unless
``SEVFLOW_ESCALATION_POLICY_FILE`` sets others), SEV4's "next business day" by the policy's
``business_hours``: the deadlines the escalation engine judges (``EscalationSnapshot.sla_deadline``)
and ``sevflow report`` uses. Pure: ``now`` is an argument.

The current episode starts when the incident opened, or when it last reopened; a response is its
acknowledgement (or resolution) in that episode.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from analytics.figures import ResponseTargets
from models.escalation import NEXT_BUSINESS_DAY, EscalationPolicy, EscalationSnapshot, playbook_policy
from models.incident import Incident
from models.severity import PLAYBOOK, Severity

__all__ = [
    "PolicyTargets",
    "ResponseClock",
    "format_duration",
    "format_remaining",
    "response_clock",
]


class PolicyTargets:
    """The acknowledge target per severity of an escalation policy (the playbook's by default),
    of each team's own policy for its incidents (its targets, its business hours); a severity
    the policy gives none falls back to the playbook's, by the policy's calendar."""

    def __init__(self, policy: EscalationPolicy | None = None) -> None:
        self._policy = policy or playbook_policy()
        self._snapshots: dict[str, EscalationSnapshot] = {}

    def _snapshot(self, team: str) -> EscalationSnapshot:
        if (snapshot := self._snapshots.get(team)) is None:
            snapshot = self._snapshots[team] = self._policy.for_team(team).snapshot(())
        return snapshot

    def deadline(self, severity: Severity, started_at: datetime, team: str = "default") -> datetime:
        snapshot = self._snapshot(team)
        target = snapshot.plans[severity].acknowledge_target
        due = snapshot.sla_deadline(target, started_at)
        if due is not None:
            return due
        return ResponseTargets(calendar=snapshot.business_hours).deadline(severity, started_at)

    def label(self, severity: Severity, team: str = "default") -> str:
        """``< 15 min``, ``< 2 hours`` (the playbook's words when the target is the playbook's),
        ``< 45 min``, ``next business day``."""
        target = self._snapshot(team).plans[severity].acknowledge_target
        playbook = PLAYBOOK[severity]
        if target is None or target == (playbook.response_target or NEXT_BUSINESS_DAY):
            return playbook.response_text
        if target == NEXT_BUSINESS_DAY:
            return "next business day"
        assert isinstance(target, timedelta)
        return f"< {format_duration(target)}"


@dataclass(frozen=True)
class ResponseClock:
    """``status``: ``pending`` (no response yet, within target), ``breached`` (no response past
    the target, or a response after it), ``met``; ``remaining``: time left (negative: overdue),
    None once responded."""

    deadline: datetime
    status: Literal["pending", "breached", "met"]
    remaining: timedelta | None
    target_label: str


def response_clock(incident: Incident, targets: PolicyTargets, now: datetime) -> ResponseClock:
    started = incident.reopened_at or incident.opened_at
    deadline = targets.deadline(incident.severity, started, incident.team)
    label = targets.label(incident.severity, incident.team)
    responses = [
        moment
        for moment in (incident.acknowledged_at, incident.resolved_at)
        if moment is not None and moment >= started
    ]
    if responses:
        responded = min(responses)
        # (strict, as the playbook's "< 15 min" and the escalation loop: at the deadline is late)
        return ResponseClock(deadline, "met" if responded < deadline else "breached", None, label)
    remaining = deadline - now
    return ResponseClock(
        deadline, "pending" if remaining > timedelta(0) else "breached", remaining, label
    )


def format_remaining(remaining: timedelta) -> str:
    """``12m left``, ``1h05m left``, ``3m over``, ``2d4h over``."""
    seconds = int(abs(remaining.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        text = f"{days}d{hours}h"
    elif hours:
        text = f"{hours}h{minutes:02d}m"
    else:
        text = f"{minutes}m"
    return f"{text} left" if remaining > timedelta(0) else f"{text} over"


def format_duration(duration: timedelta) -> str:
    """A duration for people: ``7 s``, ``12 min``, ``1 h 05 min``, ``2 d 4 h`` (whole units,
    rounded down; a negative duration keeps its sign)."""
    sign = "-" if duration < timedelta(0) else ""
    seconds = int(abs(duration.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    elif minutes:
        text = f"{minutes} min"
    else:
        text = f"{seconds} s"
    return sign + text
