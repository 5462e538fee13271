"""counted_views: the view events each link's view_count holds, so a counter adds an event once

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 01:20:00

Views of links without a limit are counted by the drain from the event buffer (issue 16, point 7); a
limited link's view is counted with its event line in one transaction, so a crash never uses up a view
that no figure shows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counted_views",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("link_id", sa.String(length=32), nullable=False),
        sa.Column("at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("pending", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_counted_views")),
    )
    op.create_index(op.f("ix_counted_views_at"), "counted_views", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_counted_views_at"), table_name="counted_views")
    op.drop_table("counted_views")
