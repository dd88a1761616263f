"""Incidents and their lifecycle: a pure state machine over alerts, commands and time.

::

    (no incident) --firing alert--> TRIGGERED --ack--> ACKNOWLEDGED --resolve--> RESOLVED
                                        |  ^------------- reopen (firing within the window) --|
                                        '--resolve / all alerts resolved + quiet period ------>'

With a verification probe for its service (models/verification.py), all alerts resolved is not
enough: the quiet period ends only once a probe result in it passed, and a failing result keeps
the incident open in ``monitoring`` and starts the quiet period again.

Every function here takes the current state and ``now`` and returns the new state with the events
that describe the change, or ``None`` when nothing changes (a duplicate, a stale record, an ack of
an acknowledged incident). Nothing here reads a clock or does I/O, so the whole lifecycle is tested
in milliseconds; the stream worker persists the result and the events in one transaction.
"""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from models.alert import AlertRecord, RecordPosition
from models.canary import is_canary
from models.events import (
    Actor,
    AlertSnapshot,
    EventType,
    IncidentEvent,
    IncidentSnapshot,
    IncidentState,
    RunbookSnapshot,
    event_id,
)
from models.severity import Severity

__all__ = [
    "ALERTMANAGER",
    "COMMAND_ID_MAX",
    "COMMAND_SCHEMA_VERSION",
    "INCIDENT_ID_MAX",
    "PUBLIC_BODY_MAX",
    "PUBLIC_TITLE_MAX",
    "RESOLUTION_DETAILS",
    "RESOLUTION_DETAIL_MAX",
    "SEVFLOW",
    "AlertState",
    "Classification",
    "Command",
    "Incident",
    "LifecyclePolicy",
    "Outcome",
    "RunbookChooser",
    "alert_state",
    "annotate",
    "apply_alert",
    "apply_command",
    "can_take_back",
    "expire_quiet_period",
    "new_incident_id",
    "refusal",
    "slugify",
    "superseded",
    "verified",
]

#: Version of the commands topic's records; changes only when a reader would have to behave
#: differently (fields are only ever added). Commands written before it existed are version 1.
COMMAND_SCHEMA_VERSION = 1

ALERTMANAGER = Actor(via="alertmanager")
SEVFLOW = Actor(via="sevflow")

#: Labels that name a service / an instance, most specific first (blast radius, services list).
SERVICE_LABELS = ("service", "app", "job")
INSTANCE_LABELS = ("instance", "pod", "host", "node")
#: Distinct names kept per incident; enough to decide blast radius without unbounded growth.
_NAMES_KEPT = 50


class LifecyclePolicy(BaseModel):
    """How incidents open, grow and close."""

    model_config = ConfigDict(frozen=True)

    quiet_period: timedelta = Field(
        default=timedelta(minutes=15),
        description="All alerts resolved for this long resolves the incident (the playbook "
        "watches a fix for 15 minutes before closing).",
    )
    reopen_window: timedelta = Field(
        default=timedelta(hours=1),
        description="The same group firing again within this time after resolution reopens the "
        "incident (a flap) instead of opening a new one.",
    )
    blast_radius_instances: int = Field(
        default=5,
        ge=2,
        description="Distinct instances that have fired in one incident (since it opened) that "
        "raise its severity.",
    )
    blast_radius_services: int = Field(
        default=3, ge=2, description="Services in one incident that raise its severity."
    )


class Classification(BaseModel):
    """What the severity rules say of one alert."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    rule: str
    reasons: tuple[str, ...] = ()
    security: bool = False
    data_loss: bool = False
    data_breach: bool = False


class AlertState(BaseModel):
    """The stored state of one alert (by fingerprint) and the incident it belongs to."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    incident_id: str | None
    status: Literal["firing", "resolved"]
    severity: Severity
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str | None = None
    receiver: str
    group_key: str
    external_url: str | None = None
    first_received_at: datetime
    last_received_at: datetime
    suppressed_by: str | None = Field(
        default=None, description="The maintenance window holding this alert (then in no incident)."
    )
    kafka_partition: int | None = Field(
        default=None,
        description="The alerts-topic partition of the last record applied (None: not known, as "
        "for states stored before positions were kept).",
    )
    kafka_offset: int | None = Field(
        default=None, description="The offset of the last record applied on ``kafka_partition``."
    )

    @property
    def position(self) -> RecordPosition | None:
        """The position of the last record applied, when known."""
        if self.kafka_partition is None or self.kafka_offset is None:
            return None
        return RecordPosition(self.kafka_partition, self.kafka_offset)

    def snapshot(self) -> AlertSnapshot:
        return AlertSnapshot(
            fingerprint=self.fingerprint,
            status=self.status,
            severity=self.severity,
            rule=self.rule,
            labels=self.labels,
            annotations=self.annotations,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            generator_url=self.generator_url,
        )


class Incident(BaseModel):
    """The persisted state of an incident (its snapshot plus bookkeeping)."""

    model_config = ConfigDict(frozen=True)

    id: str
    group_key: str
    title: str
    slug: str
    severity: Severity
    alert_severity: Severity | None = Field(
        default=None,
        description="The most severe classification among the alerts; the blast radius raises "
        "the incident above it (None in documents written before this field: use severity).",
    )
    state: IncidentState = IncidentState.TRIGGERED
    security: bool = False
    data_loss: bool = False
    data_breach: bool = False
    services: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: Actor | None = None
    resolved_at: datetime | None = None
    resolved_by: Actor | None = None
    quiet_since: datetime | None = Field(
        default=None, description="When the last firing alert resolved (quiet period start)."
    )
    monitoring: bool = Field(
        default=False,
        description="A verification probe failed in the quiet period and has not passed since: "
        "the incident stays open and its quiet period starts again (models/verification.py).",
    )
    verified_at: datetime | None = Field(
        default=None,
        description="When the incident's probe last passed in the current quiet period, after "
        "its latest failure (None: not since the quiet period started).",
    )
    flaps: int = 0
    reopened_at: datetime | None = Field(
        default=None,
        description="When the incident last reopened: a command requested before that was meant "
        "for the previous episode and is refused.",
    )
    sequence: int = Field(default=0, description="Events emitted so far.")
    alerts_total: int = 0
    alerts_firing: int = 0
    runbook_url: str | None = None
    external_url: str | None = None
    generator_url: str | None = None
    impact: str | None = None
    canary: bool = Field(default=False, description="Opened by the end-to-end canary (models.canary).")
    public_summary: str | None = Field(
        default=None, description="The first alert's `summary_public` annotation."
    )
    public_impact: str | None = Field(default=None, description="The first alert's `impact` annotation.")
    public_resolved_text: str | None = Field(
        default=None, description="The first alert's `resolved_text` annotation."
    )
    status_page_title: str | None = Field(
        default=None, description="The public title an operator published the incident with."
    )
    status_page_body: str | None = Field(
        default=None, description="The public text an operator published the incident with."
    )
    runbook: RunbookSnapshot | None = Field(
        default=None, description="The runbook matched when the incident opened (models/runbooks)."
    )
    status_page_published_at: datetime | None = None
    status_page_published_by: Actor | None = None
    team: str = Field(default="default", description="The owning team, decided at opening.")

    @property
    def is_open(self) -> bool:
        return self.state is not IncidentState.RESOLVED

    @property
    def held_from_status_page(self) -> bool:
        """A security or data-breach incident no operator has published: no status page shows
        it until ``sevflow statuspage publish`` gives it public words."""
        return (self.security or self.data_breach) and self.status_page_published_at is None

    def snapshot(self) -> IncidentSnapshot:
        return IncidentSnapshot(
            id=self.id,
            group_key=self.group_key,
            title=self.title,
            slug=self.slug,
            severity=self.severity,
            state=self.state,
            security=self.security,
            data_loss=self.data_loss,
            data_breach=self.data_breach,
            services=list(self.services),
            opened_at=self.opened_at,
            acknowledged_at=self.acknowledged_at,
            acknowledged_by=self.acknowledged_by,
            resolved_at=self.resolved_at,
            resolved_by=self.resolved_by,
            flaps=self.flaps,
            alerts_total=self.alerts_total,
            alerts_firing=self.alerts_firing,
            runbook_url=self.runbook_url,
            external_url=self.external_url,
            generator_url=self.generator_url,
            impact=self.impact,
            canary=self.canary,
            public_summary=self.public_summary,
            public_impact=self.public_impact,
            public_resolved_text=self.public_resolved_text,
            held_from_status_page=self.held_from_status_page,
            status_page_title=self.status_page_title,
            runbook=self.runbook,
            monitoring=self.monitoring,
            team=self.team,
        )


#: What a resolution may record, in the playbook's "Close Incident" message (its event's data).
RESOLUTION_DETAILS = ("root_cause", "fix", "follow_up")
RESOLUTION_DETAIL_MAX = 1000
#: The longest public title and text an operator may publish (Statuspage's incident name is 255
#: characters; its body 25,000: sevflow keeps a published text to what a reader reads).
PUBLIC_TITLE_MAX = 255
PUBLIC_BODY_MAX = 5000
#: The longest command id and incident id the incident store holds (``commands`` table); the
#: receiver and the CLI build ids well within them, so only a foreign producer's record exceeds them.
COMMAND_ID_MAX = 128
INCIDENT_ID_MAX = 64


class Command(BaseModel):
    """A manual change requested through the API, the CLI, Slack or PagerDuty.

    A resolution may say what the playbook's closing message asks for — root cause, fix,
    follow-up — which the ``resolved`` event carries in its ``data``.

    This is a wire format other processes read (the commands topic): fields are only ever added,
    and ``schema_version`` changes when a reader would have to behave differently."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = COMMAND_SCHEMA_VERSION
    command_id: str = Field(
        min_length=1, max_length=COMMAND_ID_MAX, description="Idempotency key of the request."
    )
    action: Literal["acknowledge", "resolve", "publish", "escalate", "note"]
    incident_id: str = Field(min_length=1, max_length=INCIDENT_ID_MAX)
    actor: Actor
    requested_at: AwareDatetime
    root_cause: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    fix: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    follow_up: str | None = Field(default=None, max_length=RESOLUTION_DETAIL_MAX)
    pagerduty_alert: str | None = Field(
        default=None,
        max_length=255,
        description="From PagerDuty: the dedup_key of the alert acted on there (the incident's own "
        "or an escalation level's page), which the ``acknowledged`` event carries in its data.",
    )
    public_title: str | None = Field(
        default=None,
        max_length=PUBLIC_TITLE_MAX,
        description="For publish: the public status page's title, as the operator wrote it.",
    )
    public_body: str | None = Field(
        default=None,
        max_length=PUBLIC_BODY_MAX,
        description="For publish: the public status page's text, as the operator wrote it.",
    )
    episode: int | None = Field(
        default=None,
        ge=0,
        description="The episode of the incident the command was issued for: its ``flaps`` as the "
        "caller read it (0 until it first reopens). A command for an earlier episode is refused "
        "(:func:`refusal`); None: not known, then ``requested_at`` is compared with "
        "``reopened_at``.",
    )

    text: str | None = Field(
        default=None,
        max_length=2000,
        description="For note: the note's text (models/timeline_notes.py); only with note.",
    )
    to: Literal["manager"] | None = Field(
        default=None,
        description="Whom an ``escalate`` command escalates to (the playbook's manual escalation "
        "to the engineering manager); only with ``escalate``.",
    )

    @model_validator(mode="after")
    def _details_resolve(self) -> "Command":
        if self.action != "resolve" and any(getattr(self, k) for k in RESOLUTION_DETAILS):
            raise ValueError("root_cause, fix and follow_up belong to a resolution")
        publishing = self.action == "publish"
        if publishing != bool(self.public_title and self.public_title.strip()) or publishing != bool(
            self.public_body and self.public_body.strip()
        ):
            raise ValueError("publish, and only publish, takes a public_title and a public_body")
        if (self.action == "escalate") != (self.to is not None):
            raise ValueError("'to' is given with an escalate command, and only with one")
        if (self.action == "note") != bool(self.text and self.text.strip()):
            raise ValueError("'text' is given with a note command, and only with one")
        return self

    def details(self) -> dict[str, str]:
        """The resolution details given (blank ones left out)."""
        return {k: v.strip() for k in RESOLUTION_DETAILS if (v := getattr(self, k)) and v.strip()}


@dataclass
class Outcome:
    """The result of one step: the new incident and alert state, and what changed."""

    incident: Incident | None
    alert: AlertState | None = None
    events: list[IncidentEvent] = field(default_factory=list)


def new_incident_id(record: AlertRecord) -> str:
    """A deterministic id for the incident a record opens: replaying the record gives the same id."""
    seed = f"{record.group_key}\x00{record.fingerprint}\x00{record.received_at.isoformat()}"
    return "inc_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def slugify(text: str, limit: int = 40) -> str:
    """``HighErrorRate`` → ``high-error-rate``: lower case, digits and hyphens only."""
    words = _CAMEL.sub("-", text)
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")
    return slug[:limit].rstrip("-") or "alert"


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None


def _with_name(names: tuple[str, ...], name: str | None) -> tuple[str, ...]:
    if name is None or name in names or len(names) >= _NAMES_KEPT:
        return names
    return (*names, name)


def alert_state(
    record: AlertRecord,
    cls: Classification,
    incident_id: str | None,
    previous: AlertState | None,
    position: RecordPosition | None = None,
) -> AlertState:
    """The stored state of the alert ``record`` describes, in incident ``incident_id``.

    ``position`` is the record's place on the alerts topic; without one the stored position is
    kept (a record that was not read from Kafka, such as a maintenance window's release)."""
    kept = position or (previous.position if previous is not None else None)
    return AlertState(
        fingerprint=record.fingerprint,
        incident_id=incident_id,
        status=record.status,
        severity=cls.severity,
        rule=cls.rule,
        labels=record.labels,
        annotations=record.annotations,
        starts_at=record.starts_at,
        ends_at=record.ends_at,
        generator_url=record.generator_url,
        receiver=record.receiver,
        group_key=record.group_key,
        external_url=record.external_url,
        first_received_at=previous.first_received_at if previous else record.received_at,
        last_received_at=record.received_at,
        kafka_partition=kept.partition if kept is not None else None,
        kafka_offset=kept.offset if kept is not None else None,
    )


#: How far before the alert's current start a resolution may end and still be its own: a
#: resolution made by hand (``amtool alert add --end=…`` takes whole seconds; Alertmanager then
#: starts the posted alert at its end) ends up to a second or so before the start it resolves.
RESOLUTION_SKEW = timedelta(seconds=60)


def superseded(
    record: AlertRecord, previous: AlertState | None, position: RecordPosition | None = None
) -> bool:
    """True when ``record`` is older than the stored state of its alert, or a resolution that
    ended well before (:data:`RESOLUTION_SKEW`) the alert's current firing started.

    Older is decided by the Kafka offset when ``position`` and the stored position are both known
    and on one partition: ``received_at`` is stamped by whichever receiver replica took the
    record, and a replica whose clock runs ahead would make the later records of the others look
    old. (The same offset is the same record, replayed: not older; applying it again changes
    nothing.) Otherwise (a state stored before positions were kept, a record not read from Kafka)
    it falls back to ``received_at``.

    The second rule catches a late copy of an earlier episode's resolution (the other Alertmanager
    of an HA pair, a notification retried through another receiver replica): it comes later on the
    topic, and applied it would resolve an alert that is firing. A firing record is not judged by
    its times: Alertmanager re-fires an alert it resolved on ``resolve_timeout`` with the same
    ``startsAt``. (A copy of a resolution less than the skew before the re-fire is applied: the
    alert shows resolved until its next notification.)
    """
    if previous is None:
        return False
    stored = previous.position
    if position is not None and stored is not None and position.partition == stored.partition:
        if position.offset < stored.offset:
            return True
    elif record.received_at < previous.last_received_at:
        return True
    return (
        record.status == "resolved"
        and previous.status == "firing"
        and record.ends_at is not None
        and record.ends_at < previous.starts_at - RESOLUTION_SKEW
    )


class _Recorder:
    """Accumulates events, numbering them after the incident's last sequence."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.events: list[IncidentEvent] = []

    def emit(
        self,
        incident: Incident,
        type_: EventType,
        actor: Actor,
        *,
        alert: AlertState | None = None,
        previous_severity: Severity | None = None,
        reason: str | None = None,
        data: dict[str, str] | None = None,
    ) -> Incident:
        sequence = incident.sequence + 1
        incident = incident.model_copy(update={"sequence": sequence})
        self.events.append(
            IncidentEvent(
                event_id=event_id(incident.id, sequence),
                type=type_,
                incident_id=incident.id,
                sequence=sequence,
                occurred_at=self.now,
                actor=actor,
                incident=incident.snapshot(),
                alert=alert.snapshot() if alert else None,
                previous_severity=previous_severity,
                reason=reason,
                data=data or {},
            )
        )
        return incident


#: The annotations an alert author writes for the public status page (README "What becomes
#: public"); nothing else of an alert's labels or annotations is ever shown there.
PUBLIC_ANNOTATIONS = ("summary_public", "impact", "resolved_text")


def _public(annotations: dict[str, str], name: str) -> str | None:
    value = annotations.get(name, "").strip()
    return value or None


#: Chooses the runbook of an incident from the alert that opens it (models.runbooks.RunbookSet).
RunbookChooser = Callable[[AlertRecord, Classification], RunbookSnapshot | None]
#: Chooses the team of an incident from the alert that opens it (models.teams.Teams).
TeamChooser = Callable[[AlertRecord], str]


def _open(
    record: AlertRecord,
    cls: Classification,
    incident_id: str,
    now: datetime,
    rec: _Recorder,
    position: RecordPosition | None,
    runbook_for: RunbookChooser | None = None,
    team_for: TeamChooser | None = None,
) -> Outcome:
    alert = alert_state(record, cls, incident_id, None, position)
    alertname = record.labels.get("alertname", "alert")
    incident = Incident(
        id=incident_id,
        group_key=record.group_key,
        title=record.annotations.get("summary") or alertname,
        slug=slugify(alertname),
        severity=cls.severity,
        alert_severity=cls.severity,
        security=cls.security,
        data_loss=cls.data_loss,
        data_breach=cls.data_breach,
        services=_with_name((), _first(record.labels, SERVICE_LABELS)),
        instances=_with_name((), _first(record.labels, INSTANCE_LABELS)),
        opened_at=now,
        alerts_total=1,
        alerts_firing=1,
        runbook_url=record.annotations.get("runbook_url") or record.annotations.get("runbook"),
        external_url=record.external_url,
        generator_url=record.generator_url,
        impact=record.annotations.get("impact") or record.annotations.get("description"),
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


def can_take_back(incident: Incident, policy: LifecyclePolicy, now: datetime) -> bool:
    """True when a firing alert arriving at ``now`` would join ``incident`` rather than open a new
    one: it is open (in its quiet period too), or resolved within the reopen window (a flap)."""
    if incident.is_open:
        return True
    return incident.resolved_at is not None and now - incident.resolved_at <= policy.reopen_window


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
    changes nothing: a repeat of the same status (Alertmanager re-sends every group/repeat
    interval) or a record older than what is stored. ``runbook_for`` chooses the runbook of an
    incident this record opens (recorded on it, so a replay and every consumer see the same),
    ``team_for`` its team (recorded likewise, and never moved by a later alert).
    ``verify``: the incident has a verification probe, so its quiet period ends only once the
    probe passed in it (:func:`verified`).
    """
    if superseded(record, previous, position):
        return None  # stale: a newer state of this alert is already applied
    if position is None and previous is not None:
        position = previous.position  # (a record not read from Kafka: a window's release)
    rec = _Recorder(now)
    if incident is None or not can_take_back(incident, policy, now):
        if record.status == "resolved":
            # A resolution with no incident to resolve: remember the alert, open nothing.
            if previous is not None and previous.status == "resolved":
                return None
            return Outcome(None, alert_state(record, cls, None, previous, position))
        return _open(record, cls, new_incident_id(record), now, rec, position, runbook_for, team_for)

    if record.status == "resolved" and previous is not None and previous.status == "resolved":
        # Already resolved, whichever incident it counted in: an HA peer's copy or the same alert
        # sent in a second group (a route with ``continue: true``) must not add it to this one.
        return None
    known = previous if previous is not None and previous.incident_id == incident.id else None
    if known is not None and known.status == record.status:
        return None  # duplicate: same alert, same status
    alert = alert_state(record, cls, incident.id, previous, position)

    if record.status == "resolved":
        if known is None:
            incident = incident.model_copy(update={"alerts_total": incident.alerts_total + 1})
        else:
            incident = incident.model_copy(update={"alerts_firing": incident.alerts_firing - 1})
        incident = rec.emit(incident, EventType.ALERT_RESOLVED, ALERTMANAGER, alert=alert)
        if incident.alerts_firing == 0 and incident.is_open:
            # The quiet period starts when the last firing alert resolves; the resolution of an
            # alert the incident never saw firing does not start it again.
            if incident.quiet_since is None:
                incident = incident.model_copy(update={"quiet_since": now})
            incident = _expire(incident, policy, now, rec, verify)
        return Outcome(incident, alert, rec.events)

    # A firing alert joins (or fires again in) the incident.
    if not incident.is_open:
        incident = incident.model_copy(
            update={
                "state": IncidentState.TRIGGERED,
                "flaps": incident.flaps + 1,
                "reopened_at": now,
                "resolved_at": None,
                "resolved_by": None,
                "acknowledged_at": None,
                "acknowledged_by": None,
            }
        )
        incident = rec.emit(
            incident,
            EventType.REOPENED,
            ALERTMANAGER,
            alert=alert,
            reason=f"fired again within the reopen window (flap {incident.flaps})",
        )
    updates: dict[str, object] = {
        "alerts_firing": incident.alerts_firing + 1,
        "quiet_since": None,
        "monitoring": False,  # a new firing cancels the watch, as it cancels the quiet period
        "verified_at": None,
        "security": incident.security or cls.security,
        "data_loss": incident.data_loss or cls.data_loss,
        "data_breach": incident.data_breach or cls.data_breach,
        "services": _with_name(incident.services, _first(record.labels, SERVICE_LABELS)),
        "instances": _with_name(incident.instances, _first(record.labels, INSTANCE_LABELS)),
    }
    if known is None:
        updates["alerts_total"] = incident.alerts_total + 1
    incident = incident.model_copy(update=updates)
    type_ = EventType.ALERT_ADDED if known is None else EventType.ALERT_REFIRED
    incident = rec.emit(incident, type_, ALERTMANAGER, alert=alert)

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
    if severity is not previous_severity:
        incident = incident.model_copy(update={"severity": severity})
        incident = rec.emit(
            incident,
            EventType.SEVERITY_CHANGED,
            ALERTMANAGER,
            alert=alert,
            previous_severity=previous_severity,
            reason=reason,
        )
    return Outcome(incident, alert, rec.events)


def verified(incident: Incident) -> bool:
    """True when the incident's probe passed in its current quiet period, after its latest
    failure (a failure restarts the quiet period and clears the pass)."""
    return (
        not incident.monitoring
        and incident.verified_at is not None
        and incident.quiet_since is not None
        and incident.verified_at >= incident.quiet_since
    )


def _expire(
    incident: Incident, policy: LifecyclePolicy, now: datetime, rec: _Recorder, verify: bool = False
) -> Incident:
    # A canary is resolved as soon as its alert is: nobody watches a fix, and its PagerDuty alert
    # should not stay open for the quiet period.
    quiet = timedelta(0) if incident.canary else policy.quiet_period
    if (
        incident.is_open
        and incident.alerts_firing == 0
        and incident.quiet_since is not None
        and now >= incident.quiet_since + quiet
        and (not verify or verified(incident))
    ):
        incident = incident.model_copy(
            update={
                "state": IncidentState.RESOLVED,
                "resolved_at": now,
                "resolved_by": SEVFLOW,
                "quiet_since": None,
                "monitoring": False,
                "verified_at": None,
            }
        )
        incident = rec.emit(
            incident,
            EventType.RESOLVED,
            SEVFLOW,
            reason="the canary's alert resolved"
            if incident.canary
            else f"all alerts resolved for {policy.quiet_period}"
            + (" and the verification probe passed" if verify else ""),
        )
    return incident


def expire_quiet_period(
    incident: Incident, policy: LifecyclePolicy, now: datetime, verify: bool = False
) -> Outcome | None:
    """Resolve an incident whose alerts have all been resolved for the quiet period; with
    ``verify`` (a probe is configured for it: models/verification.py), only once its probe passed
    in that quiet period (:func:`verified`)."""
    rec = _Recorder(now)
    updated = _expire(incident, policy, now, rec, verify)
    return Outcome(updated, None, rec.events) if rec.events else None


def refusal(incident: Incident, command: Command) -> str | None:
    """Why ``command`` must not apply to ``incident``, if it must not.

    Commands and alerts arrive on separate topics: a command issued before the incident
    reopened (an acknowledgement or resolution of the previous episode, applied late) would
    otherwise silence a flap nobody has seen. The episode the caller read (``command.episode``)
    decides, without comparing host clocks; only a command that does not name its episode falls
    back to comparing its ``requested_at`` with ``reopened_at``. Publishing is never refused:
    the operator's public words hold for whichever episode the incident is in.
    """
    if command.action == "publish":
        return None
    if command.episode is not None:
        if command.episode < incident.flaps:
            return (
                f"issued for episode {command.episode}; the incident reopened since "
                f"(episode {incident.flaps})"
            )
        return None
    if incident.reopened_at is not None and command.requested_at < incident.reopened_at:
        return f"requested before the incident reopened at {incident.reopened_at.isoformat()}"
    return None


def _publish(incident: Incident, command: Command, rec: _Recorder) -> Outcome | None:
    """Put the incident on the public status page with the operator's words (a held security
    incident's only way there); publishing the same words again changes nothing, new words
    are a new public update."""
    title, body = (command.public_title or "").strip(), (command.public_body or "").strip()
    if (incident.status_page_title, incident.status_page_body) == (title, body):
        return None
    incident = incident.model_copy(
        update={
            "status_page_title": title,
            "status_page_body": body,
            "status_page_published_at": incident.status_page_published_at or rec.now,
            "status_page_published_by": incident.status_page_published_by or command.actor,
        }
    )
    incident = rec.emit(
        incident,
        EventType.STATUSPAGE_PUBLISHED,
        command.actor,
        reason="published on the status page by hand",
        data={"title": title, "body": body},
    )
    return Outcome(incident, None, rec.events)


def apply_command(incident: Incident, command: Command, now: datetime) -> Outcome | None:
    """Acknowledge, resolve or publish by hand; None when the incident is already in that state
    (published with these words) or the command is refused (:func:`refusal`). An ``escalate``
    command is not a change of state: :func:`models.escalation.escalate_by_hand` applies it."""
    if refusal(incident, command) is not None or command.action in ("escalate", "note"):
        return None  # (a note: models/timeline_notes.py add_note)
    rec = _Recorder(now)
    if command.action == "publish":
        return _publish(incident, command, rec)
    if command.action == "acknowledge":
        if incident.state is not IncidentState.TRIGGERED:
            return None
        incident = incident.model_copy(
            update={
                "state": IncidentState.ACKNOWLEDGED,
                "acknowledged_at": now,
                "acknowledged_by": command.actor,
            }
        )
        data = {"pagerduty_alert": command.pagerduty_alert} if command.pagerduty_alert else None
        incident = rec.emit(incident, EventType.ACKNOWLEDGED, command.actor, data=data)
    else:
        if incident.state is IncidentState.RESOLVED:
            return None
        incident = incident.model_copy(
            update={
                "state": IncidentState.RESOLVED,
                "resolved_at": now,
                "resolved_by": command.actor,
                "quiet_since": None,
                "monitoring": False,
                "verified_at": None,
            }
        )
        incident = rec.emit(
            incident,
            EventType.RESOLVED,
            command.actor,
            reason="resolved by hand",
            data=command.details() or None,
        )
    return Outcome(incident, None, rec.events)


def annotate(
    incident: Incident,
    type_: EventType,
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    data: dict[str, str] | None = None,
) -> Outcome:
    """Record something that happened to an incident without changing its state (an escalation
    step fired, an SLA target was missed): one event, numbered after the incident's last one."""
    rec = _Recorder(now)
    incident = rec.emit(incident, type_, actor, reason=reason, data=data)
    return Outcome(incident, None, rec.events)
