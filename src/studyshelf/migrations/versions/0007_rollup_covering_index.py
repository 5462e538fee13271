"""rollup lookups cover views and bytes; rollups by day

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:30:00

Top files and folders over a range rank their values by summed views and bytes first, then read the
full rows of the few that lead: with views and bytes in the lookup index, the ranking reads the index only.
Rolling a day again replaces its rows and moves its month: (tz, day) and (tz, month) find them without a scan.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DAILY = ["scope", "tz", "dim", "day", "value"]
_MONTHLY = ["scope", "tz", "dim", "month", "value"]


def upgrade() -> None:
    with op.batch_alter_table("analytics_rollups") as batch_op:
        batch_op.drop_index("ix_analytics_rollups_lookup")
        batch_op.create_index("ix_analytics_rollups_lookup", [*_DAILY, "views", "bytes"], unique=False)
        batch_op.create_index("ix_analytics_rollups_day", ["tz", "day"], unique=False)
    with op.batch_alter_table("analytics_rollups_monthly") as batch_op:
        batch_op.drop_index("ix_analytics_rollups_monthly_lookup")
        batch_op.create_index("ix_analytics_rollups_monthly_lookup", [*_MONTHLY, "views", "bytes"], unique=False)
        batch_op.create_index("ix_analytics_rollups_monthly_month", ["tz", "month"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("analytics_rollups_monthly") as batch_op:
        batch_op.drop_index("ix_analytics_rollups_monthly_month")
        batch_op.drop_index("ix_analytics_rollups_monthly_lookup")
        batch_op.create_index("ix_analytics_rollups_monthly_lookup", _MONTHLY, unique=False)
    with op.batch_alter_table("analytics_rollups") as batch_op:
        batch_op.drop_index("ix_analytics_rollups_day")
        batch_op.drop_index("ix_analytics_rollups_lookup")
        batch_op.create_index("ix_analytics_rollups_lookup", _DAILY, unique=False)
