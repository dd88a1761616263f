"""partition_progress: the record time and the offset applied per alerts-topic partition

The quiet-period and maintenance timers act when a watermark of the records applied has passed
their deadline (models/watermark.py), not the wall clock; a record below a partition's applied
offset is a replay and changes nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.schema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partition_progress",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("newest_received_at", store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_partition_progress")),
    )


def downgrade() -> None:
    op.drop_table("partition_progress")
