"""The stored shapes of the lifecycle: the policy, an alert's classification and stored state,
and the incident itself (each with the snapshot its events carry)."""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.alert import RecordPosition
from models.events import Actor, AlertSnapshot, IncidentSnapshot, IncidentState, RunbookSnapshot
from models.severity import Severity
from models.trusted import trusted

__all__ = [
    "INSTANCE_LABELS",
    "SERVICE_LABELS",
    "AlertState",
    "Classification",
    "Incident",
    "LifecyclePolicy",
]

#: Labels that name a service / an instance, most specific first (blast radius, services list).
SERVICE_LABELS = ("service", "app", "job")
INSTANCE_LABELS = ("instance", "pod", "host", "node")


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
        """The alert as its events carry it (from validated fields: not validated again)."""
        return trusted(
            AlertSnapshot,
            {
                "fingerprint": self.fingerprint,
                "status": self.status,
                "severity": self.severity,
                "rule": self.rule,
                "labels": self.labels,
                "annotations": self.annotations,
                "starts_at": self.starts_at,
                "ends_at": self.ends_at,
                "generator_url": self.generator_url,
            },
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
        """The incident as its events carry it (built from validated fields: not validated
        again; tests/unit/test_event_construction.py holds it to what validation builds)."""
        return trusted(
            IncidentSnapshot,
            {
                "id": self.id,
                "group_key": self.group_key,
                "title": self.title,
                "slug": self.slug,
                "severity": self.severity,
                "state": self.state,
                "security": self.security,
                "data_loss": self.data_loss,
                "data_breach": self.data_breach,
                "services": list(self.services),
                "opened_at": self.opened_at,
                "acknowledged_at": self.acknowledged_at,
                "acknowledged_by": self.acknowledged_by,
                "resolved_at": self.resolved_at,
                "resolved_by": self.resolved_by,
                "flaps": self.flaps,
                "alerts_total": self.alerts_total,
                "alerts_firing": self.alerts_firing,
                "runbook_url": self.runbook_url,
                "external_url": self.external_url,
                "generator_url": self.generator_url,
                "impact": self.impact,
                "canary": self.canary,
                "public_summary": self.public_summary,
                "public_impact": self.public_impact,
                "public_resolved_text": self.public_resolved_text,
                "held_from_status_page": self.held_from_status_page,
                "status_page_title": self.status_page_title,
                "runbook": self.runbook,
                "monitoring": self.monitoring,
                "team": self.team,
            },
        )
