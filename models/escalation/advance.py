"""The one rule of escalation: :func:`advance`, a pure function of (state, incident, now) that says
what fires now and what the state becomes; and :func:`arm`, which starts an escalation.

How it runs (goalert's and grafana oncall's lessons): when escalation is *armed* for an incident,
:func:`arm` resolves the policy for the incident's services into one plan per severity and stores
that snapshot with the incident's escalation state, so editing the policy never changes a running
escalation (only the incident's *current* severity picks the plan). The state carries the next
step and the deadline the loop compares with ``now``. The loop runs :func:`advance` under the
incident's lock and writes the result with a compare-and-set on the state's version, so a restart
loses nothing and a duplicate run fires nothing.

Nothing here reads a clock or does I/O.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.escalation.calendar import format_duration
from models.escalation.firings import (
    Contacts,
    Firing,
    contact_firing,
    digest_firing,
    level_firing,
    sla_firing,
)
from models.escalation.policy import CANARY_SNAPSHOT, EscalationPolicy, SeverityPlan, Target
from models.escalation.state import DIGEST_STEP, EscalationState, EscalationStatus
from models.events import IncidentState
from models.incident import Incident

__all__ = ["Advance", "advance", "arm"]


@dataclass(frozen=True)
class Advance:
    """The result of :func:`advance`: what fires now and the state to store."""

    state: EscalationState
    firings: tuple[Firing, ...]

    @property
    def changed(self) -> bool:
        return bool(self.firings)


def arm(incident: Incident, policy: EscalationPolicy, now: datetime) -> EscalationState:
    """Start escalating ``incident``: snapshot the policy of its team for its services.

    The first escalation of an incident starts when it opened (a worker that arms late, after a
    restart, still fires on the original deadlines); a reopened incident's when it reopened
    (``now`` only for an incident that does not record it)."""
    started = incident.opened_at if incident.flaps == 0 else (incident.reopened_at or now)
    return EscalationState(
        incident_id=incident.id,
        generation=incident.flaps,
        started_at=started,
        snapshot=(
            CANARY_SNAPSHOT
            if incident.canary
            else policy.for_team(incident.team).snapshot(incident.services)
        ),
        severity=incident.severity,
    )


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


def advance(
    state: EscalationState, incident: Incident, now: datetime, *, emailing: bool = False
) -> Advance:
    """What fires for ``incident`` at ``now`` and the state after it (pure, idempotent).

    * Acknowledged or resolved: no level ever fires again; the times to acknowledge / resolve are
      recorded, and an SLA breach the loop did not see in time (it was down) is recorded once,
      judged when the answer is first seen.
    * Open (triggered or acknowledged): the contacts its flags call for (security, data loss, data
      breach) are notified once.
    * Still triggered: every level whose deadline passed fires once, in order (after a long outage
      several fire in one go: each was owed), then the acknowledge target is checked.
    * The plan follows the incident's current severity (raised SEV3 → SEV1 adds the SEV1 levels).

    ``emailing``: SMTP is configured (the email sink runs), so an email contact's reason says
    "emailed", else "not emailed (no SMTP configured)".

    Calling it again with the returned state and the same ``now`` fires nothing.
    """
    updates: dict[str, Any] = {}
    fired = _fired(state)
    if incident.state is not IncidentState.RESOLVED and incident.severity is not state.severity:
        # Another plan: its levels are walked from the start, each skipped if it was notified
        # already (by name and cycle), so one the old plan lacked still fires.
        updates.update(severity=incident.severity, next_step=0, fired=fired)
    current = state.model_copy(update=updates)
    contacts = _contacts_due(current, incident, updates)
    if incident.state is IncidentState.TRIGGERED:
        firings = _unanswered(current, now, fired, contacts, emailing, updates)
    else:
        firings = _answered(current, incident, contacts, emailing, updates)
    firings += _digest(current, incident, now, fired, updates)
    firings += _resolve_breach(current, incident, now, updates)
    return Advance(state.model_copy(update=updates), tuple(firings))


def _contacts_due(current: EscalationState, incident: Incident, updates: dict[str, Any]) -> Contacts:
    """The contacts its flags call for (security, data loss, data breach), told once while open,
    acknowledged or not: a flag can arrive with an alert after the acknowledgement."""
    contacts: list[tuple[str, tuple[Target, ...]]] = []
    if incident.state is IncidentState.RESOLVED:
        return contacts
    snapshot = current.snapshot
    if incident.security and not current.security_notified:
        updates["security_notified"] = True  # even with no contact: nothing left to do
        if snapshot.security_targets:
            contacts.append(("security", snapshot.security_targets))
    if incident.data_loss and not current.data_loss_notified:
        updates["data_loss_notified"] = True
        if snapshot.data_loss_targets:
            contacts.append(("data_loss", snapshot.data_loss_targets))
    if incident.data_breach and not current.data_breach_notified:
        updates["data_breach_notified"] = True
        if snapshot.data_breach_targets:
            contacts.append(("data_breach", snapshot.data_breach_targets))
    return contacts


def _unanswered(
    current: EscalationState,
    now: datetime,
    fired: dict[str, str],
    contacts: Contacts,
    emailing: bool,
    updates: dict[str, Any],
) -> list[Firing]:
    """Still triggered: the levels due, in order, the contacts riding along on the first that
    notifies now (or on their own), then the acknowledge target."""
    firings: list[Firing] = []
    riding = contacts  # told with the first level that notifies now, else on their own
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
            firings.append(level_firing(current, step, key, () if by_hand else riding, emailing))
            riding = riding if by_hand else ()
            fired[key] = identity
            notified.add(identity)
        step += 1
    updates["fired"] = fired
    if riding:  # no level fired now: notify the contacts on their own
        firings.extend(contact_firing(current, name, ts, emailing) for name, ts in contacts)
    updates["next_step"] = step
    updates["status"] = EscalationStatus.ACTIVE if step < plan.steps else EscalationStatus.EXHAUSTED
    ack_due = current.snapshot.sla_deadline(plan.acknowledge_target, current.started_at)
    if ack_due is not None and ack_due <= now and not current.acknowledge_breached:
        firings.append(sla_firing(current, "acknowledge", ack_due, ""))
        updates["acknowledge_breached"] = True
    return firings


def _answered(
    current: EscalationState,
    incident: Incident,
    contacts: Contacts,
    emailing: bool,
    updates: dict[str, Any],
) -> list[Firing]:
    """Acknowledged or resolved: the contacts still owed, the times to answer recorded, and an
    acknowledgement the loop saw only after its target judged late once."""
    firings = [contact_firing(current, name, ts, emailing) for name, ts in contacts]
    resolved = incident.state is IncidentState.RESOLVED
    updates["status"] = EscalationStatus.RESOLVED if resolved else EscalationStatus.ACKNOWLEDGED
    acked_at = incident.acknowledged_at
    if acked_at is not None and acked_at >= current.started_at:
        updates["acknowledged_at"] = acked_at
    if resolved and incident.resolved_at is not None:
        updates["resolved_at"] = incident.resolved_at
    answered = acked_at if acked_at is not None and acked_at >= current.started_at else None
    answered = answered or (incident.resolved_at if resolved else None)
    ack_due = current.snapshot.sla_deadline(current.plan.acknowledge_target, current.started_at)
    # Judged once, when the answer is first seen: a severity raised after the
    # acknowledgement does not make that acknowledgement late.
    first_seen = current.status in (EscalationStatus.ACTIVE, EscalationStatus.EXHAUSTED)
    if (
        first_seen
        and ack_due is not None
        and not current.acknowledge_breached
        and answered is not None
        and answered >= ack_due  # (the playbook's targets are strict: "SEV1 < 15 min")
    ):
        late = f"answered after {format_duration(answered - current.started_at)}, not"
        firings.append(sla_firing(current, "acknowledge", ack_due, late))
        updates["acknowledge_breached"] = True
    return firings


def _digest(
    current: EscalationState,
    incident: Incident,
    now: datetime,
    fired: dict[str, str],
    updates: dict[str, Any],
) -> list[Firing]:
    """The next business day's morning digest lists it while it is open (SEV4)."""
    digest_at = current.digest_due_at
    if incident.state is IncidentState.RESOLVED or digest_at is None or digest_at > now:
        return []
    fired[DIGEST_STEP] = DIGEST_STEP
    updates["fired"] = fired
    return [digest_firing(current, digest_at)]


def _resolve_breach(
    current: EscalationState, incident: Incident, now: datetime, updates: dict[str, Any]
) -> list[Firing]:
    """Resolve target: breached while open past it, or resolved late while the loop was away."""
    resolve_due = current.snapshot.sla_deadline(current.plan.resolve_target, current.started_at)
    if resolve_due is None or current.resolve_breached:
        return []
    resolved_at = incident.resolved_at if incident.state is IncidentState.RESOLVED else None
    if resolved_at is None and resolve_due <= now:
        updates["resolve_breached"] = True
        return [sla_firing(current, "resolve", resolve_due, "")]
    if resolved_at is not None and resolved_at > resolve_due:
        late = f"resolved after {format_duration(resolved_at - current.started_at)}, not"
        updates["resolve_breached"] = True
        return [sla_firing(current, "resolve", resolve_due, late)]
    return []
