"""the outbox's index holds the unpublished events only

``ix_incident_events_unpublished`` indexed every event by ``(published_at, position)``: marking
an event published moved its entry, and the index grew with the whole timeline while the relay
only ever reads the events still unpublished. The partial index ``ix_incident_events_to_publish``
on ``position WHERE published_at IS NULL`` holds just those, so the relay's read (``WHERE
published_at IS NULL ORDER BY position LIMIT n``) and the worker's backlog count walk a few
entries, and a mark inserts no entry (PostgreSQL: 22 µs of the server per event marked, the
largest statement of a worker's run, with the old index).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_events_to_publish",
            ["position"],
            unique=False,
            postgresql_where=_UNPUBLISHED,
            sqlite_where=_UNPUBLISHED,
        )
        batch_op.drop_index("ix_incident_events_unpublished")


def downgrade() -> None:
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_events_unpublished", ["published_at", "position"], unique=False
        )
        batch_op.drop_index("ix_incident_events_to_publish")
