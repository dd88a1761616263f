"""Tables of the incident store, shared by PostgreSQL and SQLite."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Dialect, MetaData, String, Table, Text, TypeDecorator

__all__ = ["UTCDateTime", "alerts", "metadata"]

metadata = MetaData()


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
    Column("fingerprint", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("generator_url", Text, nullable=True),
    Column("receiver", String(255), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("external_url", Text, nullable=True),
    Column("first_received_at", UTCDateTime, nullable=False),
    Column("last_received_at", UTCDateTime, nullable=False),
)
