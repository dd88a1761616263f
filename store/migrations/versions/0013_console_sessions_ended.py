"""console_sessions_ended: console sessions signed out, until they would have expired

Signing out of the console only asked the browser to delete its cookie; a copy of the cookie
kept signing in for the rest of its lifetime (store/console_sessions.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.schema

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions_ended",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_console_sessions_ended")),
    )
    op.create_index(
        op.f("ix_console_sessions_ended_expires_at"),
        "console_sessions_ended",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_console_sessions_ended_expires_at"), table_name="console_sessions_ended")
    op.drop_table("console_sessions_ended")
