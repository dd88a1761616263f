"""incidents record the team that owns them (README "Teams")

Incidents opened before this revision belong to the default team, as every incident did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("team", sa.String(length=64), server_default="default", nullable=False)
        )
        batch_op.create_index("ix_incidents_team_opened", ["team", "opened_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_team_opened")
        batch_op.drop_column("team")
