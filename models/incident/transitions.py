"""What one alert record does to the incident of its group, one function per transition:
open an incident, add or re-fire an alert (reopening a resolved incident within the reopen
window), raise the severity, resolve an alert (starting the quiet period). :func:`unchanged`
decides, without the alert's classification, that a record changes nothing (a repeat, a stale
copy), so the worker skips a repeat before it classifies it."""

import unicodedata
from collections.abc import Callable
from datetime import datetime

from models.alert import AlertRecord, RecordPosition
from models.canary import is_canary
from models.events import EventType, IncidentState, RunbookSnapshot
from models.incident.briefs import StoredAlert, TakingBack
from models.incident.quiet import expire
from models.incident.recorder import ALERTMANAGER, Outcome, Recorder
from models.incident.records import (
    alert_state,
    first_name,
    new_incident_id,
    slugify,
    superseded,
    with_name,
)
from models.incident.state import (
    INSTANCE_LABELS,
    SERVICE_LABELS,
    AlertState,
    Classification,
    Incident,
    LifecyclePolicy,
)
from models.severity import Severity

__all__ = [
    "PUBLIC_ANNOTATIONS",
    "RunbookChooser",
    "TeamChooser",
    "apply_alert",
    "can_take_back",
    "unchanged",
]

#: The annotations an alert author writes for the public status page (README "What becomes
#: public"); nothing else of an alert's labels or annotations is ever shown there.
PUBLIC_ANNOTATIONS = ("summary_public", "impact", "resolved_text")


def _public(annotations: dict[str, str], name: str) -> str | None:
    """An annotation written for the public status page: control characters (a bell, a line
    break) read as blanks, bidirectional overrides and isolates are dropped (on a public page
    they make a text read otherwise than it holds), and a text with nothing visible (blanks,
    zero-width spaces, direction marks) is none, so the page's own words stand instead of an
    empty title."""
    value = _visible(annotations.get(name))
    if value is None:
        return None
    flat = "".join(" " if unicodedata.category(c) == "Cc" else c for c in value.translate(_BIDI))
    return " ".join(flat.split()) or None


#: Unicode's bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def _visible(text: str | None) -> str | None:
    """``text`` unless it shows nothing (blanks, control or format characters alone): an
    alert's blank summary made a blank title (an empty announcement, a PagerDuty summary of
    "[SEV1]" and blanks) where the alert's name stands in for a missing one."""
    if text is None or all(unicodedata.category(c)[0] in "CZ" for c in text):
        return None
    return text


#: Chooses the runbook of an incident from the alert that opens it (models.runbooks.RunbookSet).
RunbookChooser = Callable[[AlertRecord, Classification], RunbookSnapshot | None]
#: Chooses the team of an incident from the alert that opens it (models.teams.Teams).
TeamChooser = Callable[[AlertRecord], str]


def _open(
    record: AlertRecord,
    cls: Classification,
    incident_id: str,
    now: datetime,
    rec: Recorder,
    position: RecordPosition | None,
    runbook_for: RunbookChooser | None = None,
    team_for: TeamChooser | None = None,
) -> Outcome:
    alert = alert_state(record, cls, incident_id, None, position)
    alertname = record.labels.get("alertname", "alert")
    annotations = record.annotations
    incident = Incident(
        id=incident_id,
        group_key=record.group_key,
        title=_visible(annotations.get("summary")) or _visible(alertname) or "alert",
        slug=slugify(alertname),
        severity=cls.severity,
        alert_severity=cls.severity,
        security=cls.security,
        data_loss=cls.data_loss,
        data_breach=cls.data_breach,
        services=with_name((), first_name(record.labels, SERVICE_LABELS)),
        instances=with_name((), first_name(record.labels, INSTANCE_LABELS)),
        opened_at=now,
        alerts_total=1,
        alerts_firing=1,
        runbook_url=record.annotations.get("runbook_url") or record.annotations.get("runbook"),
        external_url=record.external_url,
        generator_url=record.generator_url,
        impact=_visible(annotations.get("impact")) or _visible(annotations.get("description")),
        canary=is_canary(record.labels),
        public_summary=_public(record.annotations, "summary_public"),
        public_impact=_public(record.annotations, "impact"),
        public_resolved_text=_public(record.annotations, "resolved_text"),
        runbook=runbook_for(record, cls) if runbook_for is not None else None,
        team=team_for(record) if team_for is not None else "default",
    )
    reason = f"rule {cls.rule}: " + "; ".join(cls.reasons) if cls.reasons else f"rule {cls.rule}"
    incident = rec.emit(incident, EventType.OPENED, ALERTMANAGER, alert=alert, reason=reason)
    return Outcome(incident, alert, rec.events)


def _blast_radius_severity(incident: Incident, policy: LifecyclePolicy) -> tuple[Severity, str]:
    """The alerts' own severity raised one step per blast-radius threshold reached."""
    severity, reasons = incident.alert_severity or incident.severity, []
    if len(incident.instances) >= policy.blast_radius_instances:
        severity = severity.raised()
        reasons.append(f"{len(incident.instances)} instances affected")
    if len(incident.services) >= policy.blast_radius_services:
        severity = severity.raised()
        reasons.append(f"{len(incident.services)} services affected")
    return severity, "blast radius: " + ", ".join(reasons) if reasons else ""


def can_take_back(incident: TakingBack, policy: LifecyclePolicy, now: datetime) -> bool:
    """True when a firing alert arriving at ``now`` would join ``incident`` rather than open a new
    one: it is open (in its quiet period too), or resolved within the reopen window (a flap)."""
    if incident.is_open:
        return True
    return incident.resolved_at is not None and now - incident.resolved_at <= policy.reopen_window


def unchanged(
    incident: TakingBack | None,
    previous: StoredAlert | None,
    record: AlertRecord,
    policy: LifecyclePolicy,
    now: datetime,
    position: RecordPosition | None = None,
) -> bool:
    """True when ``record`` changes nothing (:func:`apply_alert` returns None for it): a record
    older than what is stored (:func:`models.incident.superseded`), a resolution of an alert
    already resolved (an HA peer's copy, or the same alert sent in a second group by a route with
    ``continue: true``, whichever incident it counted in), or a firing alert firing already, with
    the same ``startsAt``, in the incident that would take it (Alertmanager re-sends every
    group/repeat interval). Decided
    without the classification: a repeat costs no rule evaluation. It reads only the fields of
    :mod:`models.incident.briefs`, so the worker decides it on brief rows too."""
    if superseded(record, previous, position):
        return True
    if previous is None:
        return False
    if record.status == "resolved":
        return previous.status == "resolved"
    return _firing_in(incident, previous, policy, now) and record.starts_at == previous.starts_at


def _firing_in(
    incident: TakingBack | None, previous: StoredAlert, policy: LifecyclePolicy, now: datetime
) -> bool:
    """True when the alert fires already in ``incident``, which would take it back at ``now``."""
    return (
        incident is not None
        and previous.status == "firing"
        and previous.incident_id == incident.id
        and can_take_back(incident, policy, now)
    )


def apply_alert(
    incident: Incident | None,
    previous: AlertState | None,
    record: AlertRecord,
    cls: Classification,
    policy: LifecyclePolicy,
    now: datetime,
    position: RecordPosition | None = None,
    runbook_for: RunbookChooser | None = None,
    verify: bool = False,
    team_for: TeamChooser | None = None,
) -> Outcome | None:
    """Apply one alert record to the incident of its group.

    ``incident`` is the group's latest incident (open, or resolved) or None; ``previous`` the
    stored state of this fingerprint; ``position`` the record's place on the alerts topic, when
    known (it orders the alert's records: :func:`superseded`). Returns None when the record
    changes nothing (:func:`unchanged`). ``runbook_for`` chooses the runbook of an incident this
    record opens (recorded on it, so a replay and every consumer see the same), ``team_for`` its
    team (recorded likewise, and never moved by a later alert). ``verify``: the incident has a
    verification probe, so its quiet period ends only once the probe passed in it
    (:func:`verified`).
    """
    if unchanged(incident, previous, record, policy, now, position):
        return None
    if position is None and previous is not None:
        position = previous.position  # (a record not read from Kafka: a window's release)
    rec = Recorder(now)
    if incident is None or not can_take_back(incident, policy, now):
        if record.status == "resolved":
            # A resolution with no incident to resolve: remember the alert, open nothing.
            return Outcome(None, alert_state(record, cls, None, previous, position))
        return _open(record, cls, new_incident_id(record), now, rec, position, runbook_for, team_for)
    known = previous is not None and previous.incident_id == incident.id
    alert = alert_state(record, cls, incident.id, previous, position)
    firing = record.status == "firing"
    if firing and previous is not None and _firing_in(incident, previous, policy, now):
        # Firing already, with another ``startsAt``: a new episode of the alert whose resolution
        # came before an HA peer's late firing copy. Its start is kept (a late copy of the old
        # episode's resolution is judged against it, :func:`superseded`); nothing else changes.
        return Outcome(None, alert)
    if record.status == "resolved":
        incident = _resolve_alert(incident, alert, known, policy, now, rec, verify)
    else:
        incident = _fire_alert(incident, alert, known, record, cls, policy, now, rec)
    return Outcome(incident, alert, rec.events)


def _resolve_alert(
    incident: Incident,
    alert: AlertState,
    known: bool,
    policy: LifecyclePolicy,
    now: datetime,
    rec: Recorder,
    verify: bool,
) -> Incident:
    """An alert resolves in ``incident`` (``known``: it counted there already, firing)."""
    if known:
        update = {"alerts_firing": incident.alerts_firing - 1}
    else:
        update = {"alerts_total": incident.alerts_total + 1}
    incident = rec.emit(incident, EventType.ALERT_RESOLVED, ALERTMANAGER, alert=alert, update=update)
    if incident.alerts_firing == 0 and incident.is_open:
        # The quiet period starts when the last firing alert resolves; the resolution of an
        # alert the incident never saw firing does not start it again.
        if incident.quiet_since is None:
            incident = incident.model_copy(update={"quiet_since": now})
        incident = expire(incident, policy, now, rec, verify)
    return incident


def _reopen(
    incident: Incident, alert: AlertState, now: datetime, rec: Recorder, cls: Classification
) -> Incident:
    """A resolved incident fires again within the reopen window: a flap, a new episode. The
    alert's security flags come with the reopening: it is what the status page and the public
    channels act on first, and it reopened in the alert's words a published incident that the
    alert was turning into a security one."""
    flaps = incident.flaps + 1
    update = {
        **_flags(incident, cls),
        "state": IncidentState.TRIGGERED,
        "flaps": flaps,
        "reopened_at": now,
        "resolved_at": None,
        "resolved_by": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
    }
    return rec.emit(
        incident,
        EventType.REOPENED,
        ALERTMANAGER,
        alert=alert,
        reason=f"fired again within the reopen window (flap {flaps})",
        update=update,
    )


def _fire_alert(
    incident: Incident,
    alert: AlertState,
    known: bool,
    record: AlertRecord,
    cls: Classification,
    policy: LifecyclePolicy,
    now: datetime,
    rec: Recorder,
) -> Incident:
    """A firing alert joins (or, ``known``, fires again in) the incident, reopening it first when
    it was resolved; then the severity may rise."""
    if not incident.is_open:
        incident = _reopen(incident, alert, now, rec, cls)
    update: dict[str, object] = {
        "alerts_firing": incident.alerts_firing + 1,
        "quiet_since": None,
        "monitoring": False,  # a new firing cancels the watch, as it cancels the quiet period
        "verified_at": None,
        **_flags(incident, cls),
        "services": with_name(incident.services, first_name(record.labels, SERVICE_LABELS)),
        "instances": with_name(incident.instances, first_name(record.labels, INSTANCE_LABELS)),
    }
    if not known:
        update["alerts_total"] = incident.alerts_total + 1
    type_ = EventType.ALERT_REFIRED if known else EventType.ALERT_ADDED
    incident = rec.emit(incident, type_, ALERTMANAGER, alert=alert, update=update)
    return _raise_severity(incident, alert, cls, policy, rec)


def _flags(incident: Incident, cls: Classification) -> dict[str, bool]:
    """The incident's security, data-loss and data-breach flags once an alert of ``cls`` fired in
    it: each only ever turns on."""
    return {
        "security": incident.security or cls.security,
        "data_loss": incident.data_loss or cls.data_loss,
        "data_breach": incident.data_breach or cls.data_breach,
    }


def _raise_severity(
    incident: Incident, alert: AlertState, cls: Classification, policy: LifecyclePolicy, rec: Recorder
) -> Incident:
    """The incident's severity after an alert of ``cls`` fired in it: the most severe alert's,
    raised by the blast radius; a change is a ``severity_changed`` event."""
    base = incident.alert_severity or incident.severity
    if cls.severity.is_more_severe_than(base):
        incident = incident.model_copy(update={"alert_severity": cls.severity})
    previous_severity = incident.severity
    severity, reason = previous_severity, ""
    if cls.severity.is_more_severe_than(severity):
        severity, reason = cls.severity, f"alert {alert.fingerprint} is {cls.severity} (rule {cls.rule})"
    radius, radius_reason = _blast_radius_severity(incident, policy)
    if radius.is_more_severe_than(severity) and radius_reason:
        severity, reason = radius, radius_reason
    if severity is previous_severity:
        return incident
    return rec.emit(
        incident,
        EventType.SEVERITY_CHANGED,
        ALERTMANAGER,
        alert=alert,
        previous_severity=previous_severity,
        reason=reason,
        update={"severity": severity},
    )
