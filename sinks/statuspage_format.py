"""Incident events → status page changes, in the playbook's words. Pure.

The same plan drives Atlassian Statuspage and the built-in status page. What the public sees:

=====================  =========================================================================
opened, reopened       create: investigating, "We are investigating reports of …. We will provide
                       an update within 30 minutes." (when the severity is published; the
                       minutes are the follow-up interval, and no promise is made without one;
                       an impact that is no noun phrase gives the neutral sentence instead)
severity_changed       create when it now qualifies, else update impact and component status
acknowledged           update: identified (and what an acknowledged incident shows from then on:
                       a later severity change keeps it identified, a first publication of it
                       creates it identified)
resolved               resolve: "The issue has been resolved. <resolved_text>" (else "<component>
                       is operating normally."), components operational
statuspage_published   the operator's title and text (``sevflow statuspage publish``): create,
                       or update when already shown
anything else          nothing
30 minutes of silence  follow-up (:func:`follow_up`, posted by the sinks' follow-up loop): the
                       same status, "We are continuing to …. We will provide an update within 30
                       minutes.", so the opening's promise holds (the interval is
                       SEVFLOW_STATUSPAGE_FOLLOWUP_MINUTES)
=====================  =========================================================================

**What may become public is an allow-list** (README "What becomes public"): the first alert's
``summary_public`` (the title), ``impact`` (in "We are investigating reports of …") and
``resolved_text`` (after "The issue has been resolved.") annotations, fitted into the sentences
by :mod:`sinks.public_text`, and the components that
``SEVFLOW_STATUSPAGE_COMPONENTS`` maps the incident's services to (:class:`Components`); no other
label or annotation, not even the alert's summary or description. Without them the texts are
neutral, by severity: "Partial outage affecting Checkout", "We are investigating an issue
affecting Checkout.".

**Security and data-breach incidents are held**: nothing is shown until an operator publishes
them with words of their own (a ``statuspage_published`` event); from then on the page shows the
operator's title, neutral updates and the playbook's resolution, never an alert's words. An
incident that became security only after it was shown keeps its page, and its later updates
turn neutral the same way (the words already shown stay: a page cannot be unpublished silently).

Impact and component status by severity follow Statuspage's enums (developer.statuspage.io,
``impact_override`` and component ``status``). Names and bodies fit Statuspage's lengths
(:mod:`sinks.limits`: 255 and 25,000 characters), cut with a visible "… (truncated)"; the words
taken from an alert are cut shorter, to what a public reader reads (:data:`SUBJECT_MAX`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from models.events import EventType, IncidentEvent, IncidentSnapshot, IncidentState
from models.severity import Severity
from sinks.limits import STATUSPAGE_BODY_MAX, STATUSPAGE_NAME_MAX, clip
from sinks.public_text import impact_phrase, resolution_sentences

__all__ = [
    "COMPONENT_STATUS",
    "FOLLOW_UP_BODIES",
    "IMPACT",
    "PLAYBOOK_PROMISE_MINUTES",
    "Components",
    "StatusChange",
    "follow_up",
    "investigating_body",
    "public_name",
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
#: The neutral title of an incident without a ``summary_public``, by severity.
NEUTRAL_NAME = {
    Severity.SEV1: "Major outage",
    Severity.SEV2: "Partial outage",
    Severity.SEV3: "Degraded performance",
    Severity.SEV4: "Minor issue",
}
#: What "We are investigating …" names without an ``impact`` annotation, by severity.
NEUTRAL_SUBJECT = {
    Severity.SEV1: "a major outage",
    Severity.SEV2: "an issue",
    Severity.SEV3: "degraded performance",
    Severity.SEV4: "a minor issue",
}
#: The end of the neutral sentence when no component is mapped.
NO_COMPONENT = "some of our services"
NAME_MAX = STATUSPAGE_NAME_MAX
#: How much of an alert's impact or title a public update quotes (sevflow's choice, well inside
#: Statuspage's 25,000-character body).
SUBJECT_MAX = 1000

Kind = Literal["create", "update", "resolve"]
Status = Literal["investigating", "identified", "monitoring", "resolved"]


@dataclass(frozen=True)
class StatusChange:
    """One change to the public incident; ``components`` maps a component (a Statuspage
    component id, or the built-in page's component name) to its new status."""

    kind: Kind
    name: str
    status: Status
    impact: str
    body: str | None = None
    components: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Components:
    """``SEVFLOW_STATUSPAGE_COMPONENTS``: service label value → component. A service not in it
    is never shown. ``ids``: the components are Statuspage ids, which the texts cannot name, so
    they name the (mapped) service instead; the built-in page's components are names."""

    by_service: Mapping[str, str] = field(default_factory=dict)
    ids: bool = False
    #: A team's own allow-list (models.teams), by team name, used instead of ``by_service`` for
    #: that team's incidents; the default team and a team without its own use ``by_service``.
    by_team: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def _allowed(self, incident: IncidentSnapshot) -> Mapping[str, str]:
        return self.by_team.get(incident.team, self.by_service)

    def of(self, incident: IncidentSnapshot) -> list[str]:
        """The incident's components, in the order of its services."""
        allowed = self._allowed(incident)
        return list(dict.fromkeys(allowed[s] for s in incident.services if s in allowed))

    def words(self, incident: IncidentSnapshot) -> list[str]:
        """How the public texts name the incident's components."""
        if not self.ids:
            return self.of(incident)
        allowed = self._allowed(incident)
        return [s for s in dict.fromkeys(incident.services) if s in allowed]


NONE = Components()


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _alert_words(incident: IncidentSnapshot) -> bool:
    """True when the alert's public annotations may be shown: never for a security or
    data-breach incident, whatever its alerts say (README "What becomes public")."""
    return not (incident.security or incident.data_breach)


def public_name(incident: IncidentSnapshot, components: Components = NONE) -> str:
    """The public title: the operator's (published by hand), else ``summary_public``, else a
    neutral one by severity naming the components."""
    if incident.status_page_title:
        return clip(incident.status_page_title, NAME_MAX)
    if incident.public_summary and _alert_words(incident):
        return clip(incident.public_summary, NAME_MAX)
    names = components.words(incident)
    neutral = NEUTRAL_NAME[incident.severity]
    return clip(f"{neutral} affecting {_and(names)}" if names else neutral, NAME_MAX)


def _subject(incident: IncidentSnapshot, components: Components) -> str:
    # The impact only when it reads as a noun phrase after "reports of" (sinks.public_text).
    if _alert_words(incident) and (phrase := impact_phrase(incident.public_impact)):
        return "reports of " + clip(phrase, SUBJECT_MAX)
    names = components.words(incident)
    return f"{NEUTRAL_SUBJECT[incident.severity]} affecting {_and(names) if names else NO_COMPONENT}"


#: The playbook's "We will provide an update within 30 minutes."
PLAYBOOK_PROMISE_MINUTES = 30


def _promise(minutes: int | None) -> str:
    """The update promised, in the playbook's words, kept by follow-ups every ``minutes``; none
    when follow-ups are off (a promise nobody keeps is worse than none)."""
    if not minutes:
        return ""
    return f" We will provide an update within {minutes} minute{'s' if minutes != 1 else ''}."


def investigating_body(
    incident: IncidentSnapshot,
    promise: int | None = PLAYBOOK_PROMISE_MINUTES,
    components: Components = NONE,
) -> str:
    body = f"We are investigating {_subject(incident, components)}.{_promise(promise)}"
    return clip(body, STATUSPAGE_BODY_MAX)


def resolved_body(incident: IncidentSnapshot, components: Components = NONE) -> str:
    """The playbook's "The issue has been resolved." followed by the alert's ``resolved_text``
    (what returned to normal), else naming the components (a security incident always gets
    the neutral words)."""
    if _alert_words(incident) and (said := resolution_sentences(incident.public_resolved_text)):
        return clip(said, SUBJECT_MAX)  # (the alert's words: cut as the impact's are)
    names = components.words(incident)
    affected = _and(names) if names else "The affected service"
    verb = "are" if len(names) > 1 else "is"
    return clip(
        f"The issue has been resolved. {affected} {verb} operating normally.", STATUSPAGE_BODY_MAX
    )


IDENTIFIED_BODY = "The issue has been identified and a fix is being implemented."
#: Statuspage's own template for a fix being watched (the playbook's "Monitor … for 15 minutes"):
#: the incident's alerts resolved but its verification probe failed (models/verification.py).
MONITORING_BODY = "A fix has been implemented and we are monitoring the results."

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


def _status_of(incident: IncidentSnapshot) -> Status:
    if incident.state is IncidentState.RESOLVED:
        return "resolved"
    if incident.monitoring:
        return "monitoring"
    # An acknowledged incident stays "identified": a severity change must not take it back.
    return "identified" if incident.state is IncidentState.ACKNOWLEDGED else "investigating"


def _published_by_hand(event: IncidentEvent, published: bool, components: Components) -> StatusChange:
    """The operator's title and text, as a new incident or an update of the one shown."""
    incident = event.incident
    status = _status_of(incident)
    name = clip(event.data.get("title") or public_name(incident, components), NAME_MAX)
    body = clip(event.data.get("body") or "", STATUSPAGE_BODY_MAX) or None
    each = "operational" if status == "resolved" else COMPONENT_STATUS[incident.severity]
    shown = dict.fromkeys(components.of(incident), each)
    return StatusChange(
        "update" if published else "create", name, status, IMPACT[incident.severity], body, shown
    )


def status_changes(
    event: IncidentEvent,
    *,
    published: bool,
    severities: frozenset[Severity],
    promise: int | None = PLAYBOOK_PROMISE_MINUTES,
    components: Components = NONE,
) -> list[StatusChange]:
    """The changes one event makes; ``published``: the incident is already on the page;
    ``promise``: the minutes within which an update is promised (the follow-up interval);
    ``components``: which services the page shows, and as what.
    A canary incident (:mod:`models.canary`) is never shown: it is no outage of anything; a held
    security incident (``held_from_status_page``) is not shown until published by hand."""
    incident = event.incident
    if incident.canary:
        return []
    if event.type is EventType.STATUSPAGE_PUBLISHED:
        return [_published_by_hand(event, published, components)]
    if incident.held_from_status_page and not published:
        return []
    name = public_name(incident, components)
    qualifies = incident.severity in severities or incident.status_page_title is not None
    impact = IMPACT[incident.severity]
    outage = dict.fromkeys(components.of(incident), COMPONENT_STATUS[incident.severity])
    status = _status_of(incident)
    opening_body = (
        IDENTIFIED_BODY if status == "identified" else investigating_body(incident, promise, components)
    )
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
                    investigating_body(incident, promise, components),
                    outage,
                )
            ]
        case EventType.SEVERITY_CHANGED if qualifies and not published:
            return [create]
        case EventType.SEVERITY_CHANGED if published:
            return [StatusChange("update", name, status, impact, None, outage)]
        case EventType.ACKNOWLEDGED if published:
            return [StatusChange("update", name, "identified", impact, IDENTIFIED_BODY, outage)]
        case EventType.VERIFICATION_FAILED if published:
            return [StatusChange("update", name, "monitoring", impact, MONITORING_BODY, outage)]
        case EventType.RESOLVED if published:
            operational = dict.fromkeys(components.of(incident), "operational")
            return [
                StatusChange(
                    "resolve", name, "resolved", impact, resolved_body(incident, components), operational
                )
            ]
    return []
