"""launch locale: the learner's language an LTI launch asked for (launch_presentation.locale)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 04:00:00

The viewer of a launch, its folder pages and its refusals speak the language the LMS asked for (issue 19,
point 5); it is kept with the launch so every page of that viewer session uses it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lti_launches") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=35), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("lti_launches") as batch:
        batch.drop_column("locale")
