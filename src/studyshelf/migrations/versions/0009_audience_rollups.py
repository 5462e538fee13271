"""audience rollups: one day's metrics per (country, browser, OS, device)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:07:47
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_METRICS = ("views", "viewers", "load_ok", "fails", "downloads", "blocked", "bytes", "load_ms_sum")


def upgrade() -> None:
    op.create_table(
        "analytics_audience_rollups",
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("browser", sa.String(length=255), nullable=False),
        sa.Column("os", sa.String(length=255), nullable=False),
        sa.Column("device", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _METRICS),
        *(sa.Column(f"h{i}", sa.Integer(), nullable=False) for i in range(16)),
        sa.PrimaryKeyConstraint(
            "tz", "day", "scope", "country", "browser", "os", "device", name=op.f("pk_analytics_audience_rollups")
        ),
    )
    with op.batch_alter_table("analytics_audience_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_audience_rollups_lookup", ["scope", "tz", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("analytics_audience_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_audience_rollups_lookup")
    op.drop_table("analytics_audience_rollups")
