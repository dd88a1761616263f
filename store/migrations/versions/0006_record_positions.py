"""alerts keep the Kafka position of their last record

Within an alert, records are ordered by their alerts-topic offset rather than by the receiver
replicas' clocks. Rows written before this revision have no position and keep the old rule
(``last_received_at``) until their next record.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kafka_partition", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("kafka_offset", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("kafka_offset")
        batch_op.drop_column("kafka_partition")
