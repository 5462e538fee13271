"""cluster state: a page view's seqs and per-minute rate in beacon_views; the access epoch

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 01:10:00

Limits that were kept per process now hold across instances (issue 16, point 4): a beacon's replay and
rate checks join the conditional UPDATE of its page view, and `access_epoch` counts the changes that can
take away access, so every instance's access cache drops what was decided before one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("beacon_views") as batch:
        batch.add_column(sa.Column("seqs", sa.Text(), nullable=False, server_default=","))
        batch.add_column(sa.Column("minute", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("minute_events", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "access_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_epoch")),
    )


def downgrade() -> None:
    op.drop_table("access_epoch")
    with op.batch_alter_table("beacon_views") as batch:
        batch.drop_column("minute_events")
        batch.drop_column("minute")
        batch.drop_column("seqs")
