"""beacon_playbacks: a page view's playback beacons, counted apart from its one load outcome

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 05:30:00

A viewer page sends one load outcome (beacon_events_per_view) and, while its media plays, playback reports
(pause, end, leaving the page), each limited per view by beacon_playbacks_per_view (issue 19, point 6).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("beacon_views") as batch:
        batch.add_column(sa.Column("playbacks", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("beacon_views") as batch:
        batch.drop_column("playbacks")
