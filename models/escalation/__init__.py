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

The package, one idea per module (import from ``models.escalation``; the modules are its layout)::

    calendar   durations as written in a policy, the business calendar ("next business day")
    policy     targets, levels, the policy and its per-severity snapshot on an incident
    playbook   the playbook's default policy (above), its delays from the settings
    state      the stored escalation of one incident: where it stands, when it is next due
    firings    what fires: one ``escalated`` / ``sla_breached`` annotation per kind
    advance    :func:`arm` and the one rule :func:`advance` (state, incident, now) → firings, state

Nothing here reads a clock or does I/O.
"""

from models.escalation.advance import Advance, advance, arm
from models.escalation.calendar import (
    NEXT_BUSINESS_DAY,
    BusinessCalendar,
    Duration,
    SlaTarget,
    format_duration,
    parse_duration,
)
from models.escalation.firings import Firing, escalate_by_hand, escalation_targets
from models.escalation.playbook import PlaybookTimes, playbook_policy
from models.escalation.policy import (
    CANARY_SNAPSHOT,
    PAGERDUTY_TARGET_MAX,
    EscalationLevel,
    EscalationOverride,
    EscalationPolicy,
    EscalationSnapshot,
    SeverityPlan,
    Target,
)
from models.escalation.state import (
    DIGEST_STEP,
    MANAGER_STEP,
    EscalationState,
    EscalationStatus,
    escalation_id,
)

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
