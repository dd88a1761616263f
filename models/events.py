"""The ``incident-events`` topic: every change of every incident, as a self-describing record.

Each event carries the incident's snapshot *after* the change, so a consumer (sinks, analytics)
needs no database: it can rebuild every incident's full history from the topic alone. Records are
keyed by incident id (all events of one incident are on one partition, in ``sequence`` order).

``event_id`` is derived from ``(incident_id, sequence)``, so a replayed change produces the same id
and consumers can deduplicate on it. The JSON Schema is exported to
``docs/incident-events.schema.json`` (``sevflow schema``); fields are only ever added, and
``schema_version`` changes when a consumer would have to behave differently.
"""

import hashlib
import uuid
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models.severity import Severity

__all__ = [
    "EVENT_NAMESPACE",
    "EVENT_SCHEMA_VERSION",
    "Actor",
    "AlertSnapshot",
    "EventType",
    "IncidentEvent",
    "IncidentSnapshot",
    "IncidentState",
    "RunbookSnapshot",
    "event_id",
]

EVENT_SCHEMA_VERSION = 1

#: Namespace of the deterministic event ids (uuid5).
EVENT_NAMESPACE = uuid.UUID("6f1c1a52-3a0e-4d0b-9d7e-5e1f0c2b7a41")


class IncidentState(StrEnum):
    """Lifecycle states: triggered → acknowledged → resolved (and reopened back to triggered)."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EventType(StrEnum):
    """What changed. Consumers must ignore types they do not know (new ones may be added)."""

    OPENED = "opened"
    ALERT_ADDED = "alert_added"
    ALERT_RESOLVED = "alert_resolved"
    ALERT_REFIRED = "alert_refired"
    SEVERITY_CHANGED = "severity_changed"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    ESCALATED = "escalated"
    SLA_BREACHED = "sla_breached"
    STATUSPAGE_PUBLISHED = "statuspage_published"
    VERIFICATION_FAILED = "verification_failed"
    VERIFICATION_PASSED = "verification_passed"
    NOTE_ADDED = "note_added"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class Actor(_Frozen):
    """Who made a change and through what: ``via`` is alertmanager, sevflow (timers), api, cli,
    slack or pagerduty; ``name`` is who the credential says acted: the API token's name, the
    Slack or PagerDuty user of a verified callback, the operating-system user of the CLI.
    ``note`` is free text the caller wrote (the API's and CLI's ``by``): shown as written, escaped,
    never taken for who acted."""

    via: str
    name: str | None = None
    note: str | None = Field(
        default=None,
        description="The caller's own words about who or why (free text, display only).",
        # Left out when empty: events written before the field existed read back byte for byte.
        exclude_if=lambda note: note is None,
    )


class AlertSnapshot(_Frozen):
    """One alert as it stands in the incident."""

    fingerprint: str
    status: str
    severity: Severity
    rule: str = Field(description="Name of the classification rule that matched.")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    generator_url: str | None = None


class RunbookSnapshot(_Frozen):
    """The runbook matched when the incident opened, its commands filled from the alert's labels
    (models/runbooks.py): recorded once, so every consumer and every replay shows the same one."""

    name: str = Field(description="The runbook's file name without `.md`.")
    title: str
    text: str = Field(description="The Markdown body, placeholders filled where a label gave them.")
    url: str | None = Field(
        default=None, description="The opening alert's `runbook_url` annotation, linked beside it."
    )
    placeholders: list[str] = Field(
        default_factory=list, description="Placeholders no label filled (left visible in the text)."
    )
    link: str | None = Field(
        default=None,
        description="Where the runbook is published (`SEVFLOW_RUNBOOKS_URL` with its name), if set.",
    )


class IncidentSnapshot(_Frozen):
    """The incident after the change."""

    id: str
    group_key: str
    title: str
    slug: str = Field(description="Short lower-case description, used in channel names.")
    severity: Severity
    state: IncidentState
    security: bool = False
    data_loss: bool = False
    data_breach: bool = False
    services: list[str] = Field(default_factory=list)
    opened_at: AwareDatetime
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: Actor | None = None
    resolved_at: AwareDatetime | None = None
    resolved_by: Actor | None = None
    flaps: int = 0
    alerts_total: int = 0
    alerts_firing: int = 0
    runbook_url: str | None = None
    external_url: str | None = Field(default=None, description="Alertmanager's URL.")
    generator_url: str | None = None
    impact: str | None = Field(default=None, description="The first alert's impact annotation.")
    canary: bool = Field(
        default=False,
        # Written only when true: every other event stays byte for byte what v1 wrote.
        exclude_if=lambda canary: not canary,
        description="Opened by sevflow's own end-to-end canary (an alert labelled "
        'sevflow_canary="true"): pages nobody, goes to the canary\'s PagerDuty routing key only, '
        "is left out of Slack, the status page and response analytics.",
    )
    # The words an alert author wrote for the public (README "What becomes public"), from the
    # incident's first alert; written only when given, like every field below.
    public_summary: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The first alert's `summary_public` annotation: the public page's title.",
    )
    public_impact: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The first alert's `impact` annotation (never its description).",
    )
    public_resolved_text: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The first alert's `resolved_text` annotation: the public resolution.",
    )
    held_from_status_page: bool = Field(
        default=False,
        exclude_if=lambda held: not held,
        description="A security or data-breach incident no operator has published yet: no "
        "status page shows it (`sevflow statuspage publish`).",
    )
    status_page_title: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The public title an operator published the incident with, if any.",
    )
    runbook: RunbookSnapshot | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description='The runbook matched by the opening alert (README "Runbooks"), if any.',
    )
    monitoring: bool = Field(
        default=False,
        exclude_if=lambda monitoring: not monitoring,
        description="All alerts resolved, but the verification probe failed and has not passed "
        "since: the fix is being watched (the status page's `monitoring`).",
    )
    team: str = Field(
        default="default",
        # Written only for a team of the teams file: the default team's events stay what v1 wrote.
        exclude_if=lambda team: team == "default",
        description='The team that owns the incident, decided when it opened (README "Teams").',
    )


class IncidentEvent(_Frozen):
    """One change of one incident, as published on ``incident-events``."""

    #: An integer as written (strict): "2" or 2.0 read as a version would mislead every consumer.
    schema_version: int = Field(default=EVENT_SCHEMA_VERSION, strict=True)
    event_id: uuid.UUID
    type: EventType
    incident_id: str
    sequence: int = Field(ge=1, description="1 for `opened`, then +1 per event of the incident.")
    occurred_at: AwareDatetime
    actor: Actor
    incident: IncidentSnapshot
    alert: AlertSnapshot | None = Field(default=None, description="For alert_* events.")
    previous_severity: Severity | None = Field(default=None, description="For severity_changed.")
    reason: str | None = Field(default=None, description="Why, in words (e.g. the rule, a flap).")
    data: dict[str, str] = Field(
        default_factory=dict, description="Type-specific details (e.g. escalation level)."
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "IncidentEvent":
        return cls.model_validate_json(raw)


#: SHA-1 after the namespace's bytes: an event id hashes only its own name on top of a copy.
_AFTER_NAMESPACE = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)


def event_id(incident_id: str, sequence: int) -> uuid.UUID:
    """The deterministic id of an incident's ``sequence``-th event: ``uuid5(EVENT_NAMESPACE,
    f"{incident_id}/{sequence}")``, without hashing the namespace again for each (the storm's
    hundred thousand events each take one)."""
    digest = _AFTER_NAMESPACE.copy()
    digest.update(f"{incident_id}/{sequence}".encode())
    return uuid.UUID(bytes=digest.digest()[:16], version=5)
