"""course names: titles of LTI courses and resource links learned at launch, for analytics

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 04:00:00

Figures count courses by the LTI context id and placements by the resource link id (issue 18, point 6):
launches tell their titles, kept per partner organisation under the same key the events use.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from studyshelf.core.db import UtcDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_course_names",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=200), nullable=False),
        sa.Column("learned_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_id", "kind", "key"),
    )


def downgrade() -> None:
    op.drop_table("analytics_course_names")
