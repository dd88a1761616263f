"""Tables of the incident store, shared by PostgreSQL and SQLite."""

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

from models.alert import FINGERPRINT_MAX, RECEIVER_MAX
from models.incident import COMMAND_ID_MAX, INCIDENT_ID_MAX

__all__ = [
    "UTCDateTime",
    "alert_source",
    "alerts",
    "commands",
    "incident_events",
    "incident_groups",
    "incidents",
    "leases",
    "maintenance_windows",
    "metadata",
    "partition_progress",
]

# Constraint names are fixed so Alembic migrations are the same on PostgreSQL and SQLite.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on every back end (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", String(FINGERPRINT_MAX), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("generator_url", Text, nullable=True),
    Column("receiver", String(RECEIVER_MAX), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("external_url", Text, nullable=True),
    Column("first_received_at", UTCDateTime, nullable=False),
    Column("last_received_at", UTCDateTime, nullable=False),
    # The incident the alert belongs to now (None: resolved with no incident to resolve).
    Column("incident_id", String(64), nullable=True, index=True),
    Column("severity", String(8), nullable=True),
    Column("rule", String(255), nullable=True),
    # The maintenance window holding the alert (it then belongs to no incident).
    Column("suppressed_by", String(64), nullable=True, index=True),
    # The alerts-topic position of the last record applied: orders the alert's records (None:
    # stored before positions were kept, or never read from Kafka).
    Column("kafka_partition", Integer, nullable=True),
    Column("kafka_offset", BigInteger, nullable=True),
)

#: Maintenance windows (models.maintenance); ``released_at`` is set once the alerts a window held
#: have been applied again after its end.
maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False, index=True),
    Column("document", Text, nullable=False),
    Column("released_at", UTCDateTime, nullable=True),
)

#: One row per group key: the lock that serialises every change of that group's incidents, and
#: a pointer to its latest incident.
incident_groups = Table(
    "incident_groups",
    metadata,
    Column("group_key", Text, primary_key=True),
    Column("incident_id", String(64), nullable=True),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("group_key", Text, nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("title", Text, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("quiet_since", UTCDateTime, nullable=True),
    Column("sequence", Integer, nullable=False),
    # The team that owns the incident (models.teams), decided when it opened.
    Column("team", String(64), nullable=False, server_default="default"),
    # models.incident.Incident as JSON text, the source of truth (text: written and read by
    # pydantic's fast serialiser, never queried inside)
    Column("document", Text, nullable=False),
    Index("ix_incidents_state_opened", "state", "opened_at"),
    Index("ix_incidents_team_opened", "team", "opened_at"),
)

#: The timeline of every incident, and the outbox of the incident-events topic: a row is written
#: in the same transaction as the change it describes and marked published once Kafka acked it.
incident_events = Table(
    "incident_events",
    metadata,
    Column(
        "position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("incident_id", String(64), nullable=False, index=True),
    Column("sequence", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("document", Text, nullable=False),  # models.events.IncidentEvent, exactly as published
    Column("published_at", UTCDateTime, nullable=True),
    # The outbox: the unpublished events only (migration 0011), read in storage order.
    Index(
        "ix_incident_events_to_publish",
        "position",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

#: Manual commands already applied (idempotency of acknowledge/resolve requests).
commands = Table(
    "commands",
    metadata,
    Column("command_id", String(COMMAND_ID_MAX), primary_key=True),
    Column("incident_id", String(INCIDENT_ID_MAX), nullable=False),
    Column("action", String(16), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

#: Leases: which worker may run a singleton loop (outbox relay, timers); ``token`` fences
#: a holder whose lease expired.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("token", Integer, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: Per alerts-topic partition, the newest ``received_at`` applied (the record time the worker has
#: reached on it, models/watermark.py) and the next offset to apply. Written in the transaction
#: that applies the records, only ever moved forward; shared, so workers owning different
#: partitions agree on the watermark.
partition_progress = Table(
    "partition_progress",
    metadata,
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("newest_received_at", UTCDateTime, nullable=False),
    #: The offset after the last record applied: a record below it was applied already (a replay
    #: after a crash, read again from the last committed offset) and changes nothing, whatever
    #: the store's state is now.
    Column("next_offset", BigInteger, nullable=True),
)

#: The alerts topic the stored positions (``partition_progress.next_offset``, the alerts'
#: ``kafka_partition`` and ``kafka_offset``) were read from: its name and Kafka's id of it. A topic
#: deleted and created again under the same name has a new id and starts again at offset 0, so
#: the positions of the old one are forgotten when the worker first sees the new one
#: (store/alert_source.py); one row, ``source`` = 'alerts'.
alert_source = Table(
    "alert_source",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("topic", String(255), nullable=False),
    Column("topic_id", String(36), nullable=False),
    Column("since", UTCDateTime, nullable=False),
)
