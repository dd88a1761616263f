"""sink_refs.key widened to 255 characters

A PagerDuty escalation alert's ref is ``escalation:<target>[/repeat<n>]``: on PostgreSQL a target
name of about 45 characters overflowed the 64 of the column, after the page was sent, and every
redelivery paged again. (SQLite does not enforce the width.)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 22:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sink_refs", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(length=64), type_=sa.String(length=255), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sink_refs", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(length=255), type_=sa.String(length=64), nullable=False
        )
