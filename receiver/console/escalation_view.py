"""The escalation levels still ahead of an incident, as the incident page lists them.

The steps come from the stored state and its snapshot's plan (models/escalation/: ``SeverityPlan``
``steps`` and ``step_at``, the rule :func:`models.escalation.advance` walks), so a policy that
repeats (``repeat``, ``repeat_interval``) shows every cycle still to come, at the moment the loop
will fire it. Pure: ``now`` is an argument.
"""

from dataclasses import dataclass
from datetime import datetime

from models.escalation import EscalationState, EscalationStatus, Target

__all__ = ["LevelAhead", "levels_ahead"]


@dataclass(frozen=True)
class LevelAhead:
    """One step still to fire: its level's name, when, whom; ``cycle`` 0 is the first pass,
    1 the first repeat."""

    name: str
    due: datetime
    targets: tuple[Target, ...]
    cycle: int
    by_hand: bool
    overdue: bool


def levels_ahead(state: EscalationState | None, now: datetime) -> list[LevelAhead]:
    """The steps of ``state``'s plan not fired yet (none once the escalation stopped:
    acknowledged, resolved or exhausted); ``overdue`` marks a step the loop owes but has not run."""
    if state is None or state.status is not EscalationStatus.ACTIVE:
        return []
    plan = state.plan
    ahead = []
    for step in range(state.next_step, plan.steps):
        due = plan.step_at(state.started_at, step)
        cycle, index = divmod(step, len(plan.levels))
        level = plan.levels[index]
        ahead.append(LevelAhead(level.name, due, level.targets, cycle, level.by_hand, due <= now))
    return ahead
