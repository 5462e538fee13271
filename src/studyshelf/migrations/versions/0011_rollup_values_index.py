"""analytics_rollups: an index by (scope, tz, dim, value, day)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:40:00

Top files and folders are ranked from the lookup index, then the leaders' rows are read: with value before
day this is a few index probes per leader instead of a walk over every value of every day in the range
(69 ms → a few ms for ten files over 30 days, 10 million events, PostgreSQL).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_analytics_rollups_values", "analytics_rollups", ["scope", "tz", "dim", "value", "day"])


def downgrade() -> None:
    op.drop_index("ix_analytics_rollups_values", table_name="analytics_rollups")
