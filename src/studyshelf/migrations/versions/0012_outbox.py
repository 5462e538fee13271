"""outbox: e-mails and webhook calls sent after the commit of the change they report

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=1000), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_due", "outbox", ["sent_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
