"""Incident events → status page changes, in the playbook's words. Pure.

The same plan drives Atlassian Statuspage and the built-in status page. What the public sees:

=====================  =========================================================================
opened, reopened       create: investigating, "We are investigating reports of …. We will provide
                       an update within 30 minutes." (when the severity is published; the
                       minutes are the follow-up interval, and no promise is made without one)
severity_changed       create when it now qualifies, else update impact and component status
acknowledged           update: identified (and what an acknowledged incident shows from then on:
                       a later severity change keeps it identified, a first publication of it
                       creates it identified)
resolved               resolve: "The issue has been resolved. …", components operational
anything else          nothing
30 minutes of silence  follow-up (:func:`follow_up`, posted by the sinks' follow-up loop): the
                       same status, "We are continuing to …. We will provide an update within 30
                       minutes.", so the opening's promise holds (the interval is
                       SEVFLOW_STATUSPAGE_FOLLOWUP_MINUTES)
=====================  =========================================================================

Impact and component status by severity follow Statuspage's enums (developer.statuspage.io,
``impact_override`` and component ``status``). Names and bodies fit Statuspage's lengths
(:mod:`sinks.limits`: 255 and 25,000 characters), cut with a visible "… (truncated)"; the words
taken from an alert (its title, impact or description) are cut shorter, to what a public reader
reads (:data:`SUBJECT_MAX`).
"""

from dataclasses import dataclass, field
from typing import Literal

from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity
from sinks.limits import STATUSPAGE_BODY_MAX, STATUSPAGE_NAME_MAX, clip

__all__ = [
    "COMPONENT_STATUS",
    "FOLLOW_UP_BODIES",
    "IMPACT",
    "PLAYBOOK_PROMISE_MINUTES",
    "StatusChange",
    "follow_up",
    "investigating_body",
    "resolved_body",
    "status_changes",
]

IMPACT = {
    Severity.SEV1: "critical",
    Severity.SEV2: "major",
    Severity.SEV3: "minor",
    Severity.SEV4: "none",
}
COMPONENT_STATUS = {
    Severity.SEV1: "major_outage",
    Severity.SEV2: "partial_outage",
    Severity.SEV3: "degraded_performance",
    Severity.SEV4: "operational",
}
NAME_MAX = STATUSPAGE_NAME_MAX
#: How much of an alert's impact or title a public update quotes (sevflow's choice, well inside
#: Statuspage's 25,000-character body).
SUBJECT_MAX = 1000

Kind = Literal["create", "update", "resolve"]
Status = Literal["investigating", "identified", "monitoring", "resolved"]


@dataclass(frozen=True)
class StatusChange:
    """One change to the public incident; ``components`` maps a service to its new status."""

    kind: Kind
    name: str
    status: Status
    impact: str
    body: str | None = None
    components: dict[str, str] = field(default_factory=dict)


def _subject(incident: IncidentSnapshot) -> str:
    subject = (incident.impact or incident.title).strip().rstrip(".")
    subject = subject[:1].lower() + subject[1:] if subject[:2] != subject[:2].upper() else subject
    return clip(subject, SUBJECT_MAX)


#: The playbook's "We will provide an update within 30 minutes."
PLAYBOOK_PROMISE_MINUTES = 30


def _promise(minutes: int | None) -> str:
    """The update promised, in the playbook's words, kept by follow-ups every ``minutes``; none
    when follow-ups are off (a promise nobody keeps is worse than none)."""
    if not minutes:
        return ""
    return f" We will provide an update within {minutes} minute{'s' if minutes != 1 else ''}."


def investigating_body(
    incident: IncidentSnapshot, promise: int | None = PLAYBOOK_PROMISE_MINUTES
) -> str:
    body = f"We are investigating reports of {_subject(incident)}.{_promise(promise)}"
    return clip(body, STATUSPAGE_BODY_MAX)


def resolved_body(incident: IncidentSnapshot) -> str:
    affected = ", ".join(incident.services) if incident.services else "The affected service"
    verb = "are" if len(incident.services) > 1 else "is"
    return clip(
        f"The issue has been resolved. {affected} {verb} operating normally.", STATUSPAGE_BODY_MAX
    )


IDENTIFIED_BODY = "The issue has been identified and a fix is being implemented."

#: The update an open incident gets after the follow-up interval without one, by its status:
#: Statuspage's own incident templates' wording, keeping the promise of the opening update.
FOLLOW_UP_BODIES: dict[str, str] = {
    "investigating": "We are continuing to investigate this issue.",
    "identified": "We are continuing to work on a fix for this issue.",
}


def follow_up(status: str, promise: int | None = PLAYBOOK_PROMISE_MINUTES) -> str | None:
    """The follow-up body for an incident in ``status`` (None: that status promised nothing)."""
    body = FOLLOW_UP_BODIES.get(status)
    return body + _promise(promise) if body is not None else None


def _components(incident: IncidentSnapshot, status: str) -> dict[str, str]:
    return dict.fromkeys(incident.services, status)


def status_changes(
    event: IncidentEvent,
    *,
    published: bool,
    severities: frozenset[Severity],
    promise: int | None = PLAYBOOK_PROMISE_MINUTES,
) -> list[StatusChange]:
    """The changes one event makes; ``published``: the incident is already on the page;
    ``promise``: the minutes within which an update is promised (the follow-up interval).
    A canary incident (:mod:`models.canary`) is never shown: it is no outage of anything."""
    incident = event.incident
    if incident.canary:
        return []
    name = clip(incident.title, NAME_MAX)
    qualifies = incident.severity in severities
    impact = IMPACT[incident.severity]
    outage = _components(incident, COMPONENT_STATUS[incident.severity])
    # An acknowledged incident stays "identified": a severity change must not take it back.
    status: Status = "identified" if incident.state is IncidentState.ACKNOWLEDGED else "investigating"
    opening_body = IDENTIFIED_BODY if status == "identified" else investigating_body(incident, promise)
    create = StatusChange("create", name, status, impact, opening_body, outage)
    match event.type:
        case EventType.OPENED | EventType.REOPENED if qualifies and not published:
            return [create]
        case EventType.REOPENED if published:
            return [
                StatusChange(
                    "update",
                    name,
                    "investigating",
                    impact,
                    investigating_body(incident, promise),
                    outage,
                )
            ]
        case EventType.SEVERITY_CHANGED if qualifies and not published:
            return [create]
        case EventType.SEVERITY_CHANGED if published:
            return [StatusChange("update", name, status, impact, None, outage)]
        case EventType.ACKNOWLEDGED if published:
            return [StatusChange("update", name, "identified", impact, IDENTIFIED_BODY, outage)]
        case EventType.RESOLVED if published:
            operational = _components(incident, "operational")
            return [
                StatusChange("resolve", name, "resolved", impact, resolved_body(incident), operational)
            ]
    return []
