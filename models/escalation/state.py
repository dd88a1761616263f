"""The stored escalation of one incident: where it stands and when it is next due.

One :class:`EscalationState` per incident, updated by the loop with a compare-and-set on its
``version`` (``store.escalations``); :mod:`models.escalation.advance` says what it becomes.
"""

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from models.escalation._base import Stored
from models.escalation.policy import EscalationLevel, EscalationSnapshot, SeverityPlan
from models.severity import Severity

__all__ = [
    "DIGEST_STEP",
    "MANAGER_STEP",
    "EscalationState",
    "EscalationStatus",
    "escalation_id",
]

#: The firing key (and ``escalated`` data ``level``) of the next business day's digest listing.
DIGEST_STEP = "digest"
#: The firing key of an escalation to the manager by hand (one per episode).
MANAGER_STEP = "manual:manager"


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


class EscalationState(Stored):
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
