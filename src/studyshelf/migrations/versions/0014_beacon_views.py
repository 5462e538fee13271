"""beacon_views: the page views the server counted, with the beacons each has sent

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:10:00

A beacon is stored only for a view that has a row here, and only while its count is under the limit:
one conditional UPDATE per beacon, so the limit holds across processes (issue 13, point 8).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "beacon_views",
        sa.Column("session", sa.String(length=32), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("counted_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session", name=op.f("pk_beacon_views")),
    )
    op.create_index(op.f("ix_beacon_views_counted_at"), "beacon_views", ["counted_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_beacon_views_counted_at"), table_name="beacon_views")
    op.drop_table("beacon_views")
