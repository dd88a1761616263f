"""The playbook's default escalation policy, its delays taken from the settings."""

from dataclasses import dataclass
from datetime import timedelta

from models.escalation.calendar import NEXT_BUSINESS_DAY
from models.escalation.policy import EscalationLevel, EscalationPolicy, Target
from models.severity import Severity

__all__ = ["PlaybookTimes", "playbook_policy"]

_PRIMARY = Target(kind="pagerduty", to="primary", label="Primary On-Call")
_SECONDARY = Target(kind="pagerduty", to="secondary", label="Secondary On-Call")
_MANAGER = Target(kind="phone", to="engineering-manager", label="Engineering Manager")


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
    return EscalationPolicy(
        levels=_levels(times or PlaybookTimes()),
        digest_severities=(Severity.SEV4,),
        manager_targets=(_MANAGER,),
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


def _levels(times: PlaybookTimes) -> tuple[EscalationLevel, ...]:
    """The playbook's levels for every severity, in the order they fire."""
    urgent = (Severity.SEV1, Severity.SEV2)
    primary, secondary, manager = _PRIMARY, _SECONDARY, _MANAGER
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
    return tuple(levels)
