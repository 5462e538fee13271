"""shared limits and caches: cluster_limits (refused-media recording) and lti_platform_jwks

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 04:10:00

Limits and caches that were kept per process now hold across instances (issue 16, point 4): the recording
of refused media URLs (one a second per client address) counts in `cluster_limits` when Redis is not set,
and the platforms' key sets are fetched once for every instance into `lti_platform_jwks`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_limits",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_cluster_limits")),
    )
    op.create_index(op.f("ix_cluster_limits_expires_at"), "cluster_limits", ["expires_at"])
    op.create_table(
        "lti_platform_jwks",
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.Column("forced_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_lti_platform_jwks")),
    )


def downgrade() -> None:
    op.drop_table("lti_platform_jwks")
    op.drop_index(op.f("ix_cluster_limits_expires_at"), table_name="cluster_limits")
    op.drop_table("cluster_limits")
