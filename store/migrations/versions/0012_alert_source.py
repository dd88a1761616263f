"""alert_source: the alerts topic (name and Kafka's id) the stored positions were read from

Offsets restart at 0 in a topic deleted and created again. Compared with the positions of the old
topic, the new topic's records looked applied already (``partition_progress.next_offset``) or
older than their alert's stored state, and were dropped though the receiver had accepted them.
The worker now compares the topic it reads with this row before it applies a record, and forgets
the old positions when they differ (store/alert_source.py). An existing store has no row: the
first check records the topic it finds, as it is.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.schema

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_source",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("topic_id", sa.String(length=36), nullable=False),
        sa.Column("since", store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_alert_source")),
    )


def downgrade() -> None:
    op.drop_table("alert_source")
