"""How much of an incident's response target is left: the playbook's SEV1 < 15 min, SEV2 < 30 min,
SEV3 < 2 hours, SEV4 next business day (analytics.figures.ResponseTargets, the targets
``sevflow report`` and the escalation engine use). Pure: ``now`` is an argument.

The current episode starts when the incident opened, or when it last reopened; a response is its
acknowledgement (or resolution) in that episode.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from analytics.figures import ResponseTargets
from models.incident import Incident

__all__ = ["ResponseClock", "format_duration", "format_remaining", "response_clock"]


@dataclass(frozen=True)
class ResponseClock:
    """``status``: ``pending`` (no response yet, within target), ``breached`` (no response past
    the target, or a response after it), ``met``; ``remaining``: time left (negative: overdue),
    None once responded."""

    deadline: datetime
    status: Literal["pending", "breached", "met"]
    remaining: timedelta | None
    target_label: str


def response_clock(incident: Incident, targets: ResponseTargets, now: datetime) -> ResponseClock:
    started = incident.reopened_at or incident.opened_at
    deadline = targets.deadline(incident.severity, started)
    label = incident.severity.info.response_text
    responses = [
        moment
        for moment in (incident.acknowledged_at, incident.resolved_at)
        if moment is not None and moment >= started
    ]
    if responses:
        responded = min(responses)
        return ResponseClock(deadline, "met" if responded <= deadline else "breached", None, label)
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
