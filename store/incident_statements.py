"""The statements of :class:`store.incidents.IncidentTx` over a batch's groups, alerts and
partitions, built once (a module of their own: the transaction reads as its steps)."""

from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.key_lists import PerDialect
from store.schema import alerts, incident_groups, incidents, partition_progress

__all__ = [
    "ALERTS",
    "APPLIED",
    "GROUPS_OF_INCIDENTS",
    "GROUP_COLUMNS",
    "GROUP_INCIDENTS",
    "KNOWN_GROUPS",
    "LOCK_GROUPS",
    "MOVE_POINTER",
    "advance_progress",
]

# Statements over a batch's keys, built once: the keys are bound as one parameter, not coerced
# into a new statement one by one for every batch (store/key_lists.py: an array on PostgreSQL).
KNOWN_GROUPS = PerDialect(
    lambda among: select(incident_groups.c.group_key).where(among(incident_groups.c.group_key, "keys"))
)
LOCK_GROUPS = PerDialect(
    lambda among: (
        select(incident_groups.c.group_key)
        .where(among(incident_groups.c.group_key, "keys"))
        .order_by(incident_groups.c.group_key)
        .with_for_update()
    )
)
ALERTS = PerDialect(lambda among: select(alerts).where(among(alerts.c.fingerprint, "fingerprints")))
GROUP_INCIDENTS = PerDialect(
    lambda among: (
        select(incident_groups.c.group_key, incident_groups.c.incident_id, incidents.c.document)
        .select_from(
            incident_groups.outerjoin(incidents, incidents.c.id == incident_groups.c.incident_id)
        )
        .where(among(incident_groups.c.group_key, "keys"))
    )
)
GROUPS_OF_INCIDENTS = PerDialect(
    lambda among: select(incidents.c.group_key).where(among(incidents.c.id, "ids"))
)
APPLIED = PerDialect(
    lambda among: select(partition_progress.c.partition, partition_progress.c.next_offset).where(
        among(partition_progress.c.partition, "partitions"),
        partition_progress.c.next_offset.is_not(None),
    )
)
GROUP_COLUMNS = ("group_key", "incident_id")
MOVE_POINTER = (
    update(incident_groups)
    .where(incident_groups.c.group_key == bindparam("g"))
    .values(incident_id=bindparam("i"))
)


def advance_progress(conn: AsyncConnection) -> Any:
    """The upsert of each partition's progress, never moved back (:meth:`IncidentTx.advance`)."""
    stmt = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        partition_progress
    )
    stored, given = partition_progress.c.newest_received_at, stmt.excluded.newest_received_at
    stored_offset, given_offset = partition_progress.c.next_offset, stmt.excluded.next_offset
    return stmt.on_conflict_do_update(
        index_elements=["partition"],
        set_={
            "newest_received_at": case((given > stored, given), else_=stored),
            "next_offset": case(
                (stored_offset.is_(None), given_offset),
                (given_offset > stored_offset, given_offset),
                else_=stored_offset,
            ),
        },
    )
