"""The escalation tables, on the shared :data:`store.schema.metadata`.

``escalations``     one row per incident: its :class:`models.escalation.EscalationState` (the
                    policy snapshot, the next step, SLA figures) plus ``due_at``, the earliest
                    moment anything may fire, which the loop's scan compares with ``now``.
                    ``version`` is the compare-and-set fence: every write names the version it read.
``escalation_log``  the audit of everything that fired, keyed by (escalation id, step key): a step
                    fires at most once per escalation even if every other guard failed, and
                    ``sevflow escalations`` shows what already fired.
"""

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text

from store.schema import UTCDateTime, metadata

__all__ = ["escalation_log", "escalations"]

escalations = Table(
    "escalations",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("escalation_id", String(96), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("next_step", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=True),
    # The incident's event sequence when the loop last examined it: a change re-examines it.
    Column("seen_sequence", Integer, nullable=False),
    Column("security_notified", Boolean, nullable=False),
    Column("data_loss_notified", Boolean, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("document", JSON, nullable=False),  # models.escalation.EscalationState
    Index("ix_escalations_status_due", "status", "due_at"),
)

escalation_log = Table(
    "escalation_log",
    metadata,
    Column("escalation_id", String(96), primary_key=True),
    Column("step", String(64), primary_key=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("fired_at", UTCDateTime, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("reason", Text, nullable=False),
    Column("targets", JSON, nullable=False),
)
