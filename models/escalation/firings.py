"""What an escalation fires: :class:`Firing`, one ``escalated`` or ``sla_breached`` annotation of
the incident, built here for each kind (a level, a contact, the digest, a response target, the
manager by hand), with the ``data`` the sinks read back (:func:`escalation_targets`).

Every firing has a ``key`` unique within one escalation (``level:2``, ``repeat1:level:1``,
``sla:acknowledge``, ``contact:security``): the audit log is keyed by it, so a step fires at most
once even if two runs raced past every other guard.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from models.escalation.calendar import NEXT_BUSINESS_DAY, format_duration
from models.escalation.policy import Target
from models.escalation.state import DIGEST_STEP, MANAGER_STEP, EscalationState, escalation_id
from models.events import EventType, IncidentState
from models.incident import Command, Incident, Outcome, annotate, refusal
from models.severity import PLAYBOOK

__all__ = [
    "Contacts",
    "Firing",
    "contact_firing",
    "contact_reason",
    "digest_firing",
    "escalate_by_hand",
    "escalation_targets",
    "level_firing",
    "sla_firing",
]


#: The contacts an incident's flags call for, by name (``security``, ``data_loss``, ``data_breach``).
Contacts = Sequence[tuple[str, tuple[Target, ...]]]


@dataclass(frozen=True)
class Firing:
    """One thing that fires now: an ``escalated`` or ``sla_breached`` annotation of the incident."""

    key: str
    type: EventType
    reason: str
    data: dict[str, str]
    targets: tuple[Target, ...] = ()


def targets_json(targets: Iterable[Target]) -> str:
    return json.dumps([t.model_dump(exclude_none=True) for t in targets], separators=(",", ":"))


def escalation_targets(data: Mapping[str, str]) -> list[Target]:
    """The targets an ``escalated`` event's ``data`` names. Lenient, since the sinks read events
    other versions wrote: fields a newer version added are ignored, and an unreadable target is
    left out rather than failing the event."""
    try:
        raw = json.loads(data.get("targets", "[]"))
    except json.JSONDecodeError:
        return []
    targets: list[Target] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            targets.append(
                Target.model_validate({k: item[k] for k in ("kind", "to", "label") if k in item})
            )
        except ValidationError:
            continue
    return targets


def level_firing(
    state: EscalationState, step: int, key: str, contacts: Contacts, emailing: bool
) -> Firing:
    """Level ``step`` fires; ``contacts`` ride along (one event): their targets are added and
    the reason says what each contact gets (:func:`contact_reason`)."""
    plan = state.plan
    cycle, index = divmod(step, len(plan.levels))
    level = plan.levels[index]
    extra = tuple(t for _, ts in contacts for t in ts)
    targets = level.targets + tuple(t for t in extra if t not in level.targets)
    waited = format_duration(level.after)
    reason = (
        f"notifying {level.name}"
        if level.after == timedelta(0) and cycle == 0
        else f"unacknowledged for {waited}: escalating to {level.name}"
    )
    if level.by_hand:
        reason = f"unacknowledged for {waited}: escalate to {level.name} by hand"
    if cycle:
        reason += f" (repeat {cycle} of {plan.repeat})"
    told = "; ".join(contact_reason(name, ts, emailing) for name, ts in contacts)
    if told:
        reason += f"; {told}"
    data = {
        "escalation_id": state.escalation_id,
        "step": key,
        "level": str(index + 1),
        "level_name": level.name,
        "cycle": str(cycle),
        "targets": targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    if level.again:
        data["again"] = "1"
    if told:
        # Why the contacts riding along are told (their email and channel notice say this, not
        # the level's own reason).
        data["contacts_reason"] = told
    if level.by_hand:
        # Asked, not notified: the sinks page and post to nobody (a contact riding along with
        # the level is still notified, on an event of its own next time: see advance).
        data["by_hand"] = "1"
        return Firing(key, EventType.ESCALATED, reason, data)
    return Firing(key, EventType.ESCALATED, reason, data, targets)


def digest_firing(state: EscalationState, at: datetime) -> Firing:
    day = at.astimezone(ZoneInfo(state.snapshot.business_hours.timezone)).date()
    data = {
        "escalation_id": state.escalation_id,
        "step": DIGEST_STEP,
        "level": DIGEST_STEP,
        "level_name": "next business day digest",
        "cycle": "0",
        "targets": "[]",
        "targets_text": "",
        "digest_day": day.isoformat(),
        "digest_at": at.isoformat(),
    }
    reason = f"{state.severity}: listed in the morning digest of {day.isoformat()}"
    return Firing(DIGEST_STEP, EventType.ESCALATED, reason, data)


def escalate_by_hand(
    incident: Incident, command: Command, targets: tuple[Target, ...], now: datetime
) -> tuple[Outcome, Firing] | str:
    """Apply an ``escalate --to manager`` command (the CLI, the API, the Slack button): an
    ``escalated`` event naming ``targets`` (the policy's ``manager_targets``), or why not.

    The episode rule of every command holds (:func:`models.incident.refusal`); a resolved
    incident has nobody left to escalate to. Once per episode is the caller's check (the
    escalation log, key :data:`MANAGER_STEP`)."""
    if (refused := refusal(incident, command)) is not None:
        return refused
    if incident.state is IncidentState.RESOLVED:
        return "the incident is resolved: nothing to escalate"
    if not targets:
        return "the escalation policy names no manager (manager_targets)"
    data = {
        "escalation_id": escalation_id(incident.id, incident.flaps),
        "step": MANAGER_STEP,
        "level": "manager",
        "level_name": "engineering manager",
        "cycle": "0",
        "targets": targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    who = command.actor.name or command.actor.via
    reason = f"escalated to the engineering manager by hand (by {who})"
    outcome = annotate(incident, EventType.ESCALATED, command.actor, now, reason=reason, data=data)
    return outcome, Firing(MANAGER_STEP, EventType.ESCALATED, reason, data, targets)


#: The order a contact's reason names its targets in: what happens at once, then the rest.
_KIND_ORDER = ("slack", "pagerduty", "email", "phone")


def contact_reason(contact: str, targets: Iterable[Target], emailing: bool) -> str:
    """What telling a contact does, target by target, as the sinks will do it: a Slack channel
    is told, a Slack user or group mentioned in the incident channel, a PagerDuty target paged,
    an email address emailed only when SMTP is configured (``emailing``: the email sink runs),
    a phone number left to be called by hand. Never "notified" when nobody will be."""
    phrases = []
    for target in sorted(targets, key=lambda t: _KIND_ORDER.index(t.kind)):
        if target.kind == "slack":
            told = f"told in {target.to}" if target.to.startswith("#") else None
            phrases.append(told or f"{target.to} mentioned in the incident channel")
        elif target.kind == "pagerduty":
            phrases.append(f"paged {target.to}")
        elif target.kind == "email":
            emailed = f"emailed {target.to}" if emailing else None
            phrases.append(emailed or f"{target.to} not emailed (no SMTP configured)")
        else:
            who = f"{target.label} ({target.to})" if target.label else target.to
            phrases.append(f"{who} to be called by hand")
    name = contact.replace("_", " ")
    return f"{contact.replace('_', '-')} incident: {name} contact {'; '.join(phrases)}"


def contact_firing(
    state: EscalationState, contact: str, targets: tuple[Target, ...], emailing: bool
) -> Firing:
    data = {
        "escalation_id": state.escalation_id,
        "step": f"contact:{contact}",
        "level": contact,
        "level_name": f"{contact} contact",
        "cycle": "0",
        "targets": targets_json(targets),
        "targets_text": ", ".join(t.label or t.to for t in targets),
    }
    reason = contact_reason(contact, targets, emailing)
    return Firing(f"contact:{contact}", EventType.ESCALATED, reason, data, targets)


def sla_firing(
    state: EscalationState, kind: Literal["acknowledge", "resolve"], deadline: datetime, late: str
) -> Firing:
    target = state.plan.acknowledge_target if kind == "acknowledge" else state.plan.resolve_target
    playbook = PLAYBOOK[state.severity]
    if kind == "acknowledge" and target == (playbook.response_target or NEXT_BUSINESS_DAY):
        target_text = playbook.response_text  # the playbook's own words: "< 15 min"
    elif isinstance(target, str):
        target_text = target.replace("_", " ")
    else:
        target_text = format_duration(target or timedelta(0))
    verb = "acknowledged" if kind == "acknowledge" else "resolved"
    data = {
        "escalation_id": state.escalation_id,
        "kind": kind,
        "severity": state.severity.value,
        "target": target_text,
        "deadline": deadline.isoformat(),
    }
    reason = f"{state.severity} {late or 'not ' + verb} within its target ({data['target']})"
    return Firing(f"sla:{kind}", EventType.SLA_BREACHED, reason, data)
