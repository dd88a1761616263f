"""The sinks' tables, on the shared :data:`store.schema.metadata`.

``sink_deliveries``  the delivery log: one row per (sink, event, step) — a step is one vendor call
                     an event needs (e.g. Slack's channel, announcement). ``pending`` is written just
                     before the call, ``done`` after it is confirmed, with what the vendor returned.
``sink_refs``        external ids per (sink, scope, key): the PagerDuty dedup_key, the Slack channel
                     id and message ts, the Statuspage incident id, a storm digest's state. Later
                     events update these objects instead of creating new ones.
``status_page_incidents``  the built-in status page: the public face of each published incident.
"""

from sqlalchemy import JSON, Column, Index, String, Table, Text

from store.schema import UTCDateTime, metadata

__all__ = ["sink_deliveries", "sink_refs", "status_page_incidents"]

sink_deliveries = Table(
    "sink_deliveries",
    metadata,
    Column("sink", String(32), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("step", String(64), primary_key=True),  # store.deliveries.STEP_MAX
    Column("incident_id", String(64), nullable=False),
    Column("status", String(8), nullable=False),
    Column("result", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_sink_deliveries_incident", "sink", "incident_id"),
)

sink_refs = Table(
    "sink_refs",
    metadata,
    Column("sink", String(32), primary_key=True),
    Column("scope", String(128), primary_key=True),
    Column("key", String(255), primary_key=True),  # models.escalation.PAGERDUTY_TARGET_MAX
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

status_page_incidents = Table(
    "status_page_incidents",
    metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("impact", String(16), nullable=False),
    Column("components", JSON, nullable=False),
    Column("updates", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index("ix_status_page_incidents_updated", "updated_at"),
)
