"""How much of an incident's response target is left: the escalation policy's acknowledge targets
(the playbook's SEV1 < 15 min, SEV2 < 30 min, SEV3 < 2 hours, SEV4 next business day, unless
``SEVFLOW_ESCALATION_POLICY_FILE`` sets others), SEV4's "next business day" by the policy's
``business_hours``: the deadlines the escalation engine judges (``EscalationSnapshot.sla_deadline``)
and ``sevflow report`` uses. Pure: ``now`` is an argument.

The current episode starts when the incident opened, or when it last reopened; a response is its
acknowledgement (or resolution) in that episode.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from analytics.durations import format_duration
from analytics.figures import ResponseTargets
from analytics.incident_times import times_of
from models.events import IncidentEvent
from models.incident import Incident
from models.severity import Severity

__all__ = [
    "ResponseClock",
    "format_duration",
    "format_remaining",
    "responded_severities",
    "response_clock",
]


@dataclass(frozen=True)
class ResponseClock:
    """``status``: ``pending`` (no response yet, within target), ``breached`` (no response past
    the target, or a response after it), ``met``; ``remaining``: time left (negative: overdue),
    None once responded."""

    deadline: datetime
    status: Literal["pending", "breached", "met"]
    remaining: timedelta | None
    target_label: str


def response_clock(
    incident: Incident,
    targets: ResponseTargets,
    now: datetime,
    responded_severity: Severity | None = None,
) -> ResponseClock:
    """The current episode's clock. Answered, it is judged by ``responded_severity``, the
    severity in effect at the response (:func:`responded_severities`; the incident's own when
    unknown), as the escalation engine and the report judge it: a SEV3 acknowledged in 20
    minutes and raised to SEV1 afterwards met its target. A reopening clears the acknowledgement
    and the resolution, so any the incident holds are the current episode's, even one stamped
    before the reopening by a host whose clock runs behind."""
    started = incident.reopened_at or incident.opened_at
    responses = [m for m in (incident.acknowledged_at, incident.resolved_at) if m is not None]
    severity = (responded_severity or incident.severity) if responses else incident.severity
    deadline = targets.deadline(severity, started, incident.team)
    label = targets.label(severity, incident.team)
    if responses:
        responded = min(responses)
        # (strict, as the playbook's "< 15 min" and the escalation loop: at the deadline is late)
        return ResponseClock(deadline, "met" if responded < deadline else "breached", None, label)
    remaining = deadline - now
    return ResponseClock(
        deadline, "pending" if remaining > timedelta(0) else "breached", remaining, label
    )


def responded_severities(
    incidents: Iterable[Incident], timelines: Mapping[str, Sequence[IncidentEvent]]
) -> dict[str, Severity]:
    """The severity in effect at the response of each answered incident's current episode,
    from its timeline (events in sequence order; the acknowledgements, resolutions and
    reopenings suffice): the ``acknowledged`` / ``resolved`` event's own snapshot."""
    found: dict[str, Severity] = {}
    for incident in incidents:
        episodes = times_of(incident.snapshot(), timelines.get(incident.id, ())).response_episodes
        if episodes and episodes[-1].severity is not None:
            found[incident.id] = episodes[-1].severity
    return found


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
