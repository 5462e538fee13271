"""lti_launches: an index on (registration_id, resource_link_id)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 21:30:00

The placement bar counts a placement's launches, and a copied course's launch looks up the links it was
copied from: both by registration and resource link id.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_lti_launches_placement", "lti_launches", ["registration_id", "resource_link_id"])


def downgrade() -> None:
    op.drop_index("ix_lti_launches_placement", table_name="lti_launches")
