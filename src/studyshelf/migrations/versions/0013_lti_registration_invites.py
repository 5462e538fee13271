"""lti registration invites, pre-published tool keys

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 18:30:00

Dynamic-registration URLs become single-use invites (only a hash of their token is stored), and a tool key
gets the moment it starts signing, so rotation can publish the next key before it signs. Existing keys
signed from their creation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lti_registration_invites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_by_email", sa.String(length=320), nullable=False),
        sa.Column("created_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("registration_id", sa.Uuid(), nullable=True),
        sa.Column("used_by", sa.String(length=300), nullable=False),
        sa.Column("revoked_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_lti_registration_invites_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_lti_registration_invites_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_registration_invites_registration_id_lti_registrations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registration_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_lti_registration_invites_token_hash")),
    )
    with op.batch_alter_table("lti_registration_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lti_registration_invites_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("lti_tool_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signs_from", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True))
    op.execute("UPDATE lti_tool_keys SET signs_from = created_at")
    with op.batch_alter_table("lti_tool_keys", schema=None) as batch_op:
        batch_op.alter_column("signs_from", existing_type=studyshelf.core.db.UtcDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("lti_tool_keys", schema=None) as batch_op:
        batch_op.drop_column("signs_from")
    with op.batch_alter_table("lti_registration_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_registration_invites_org_id"))
    op.drop_table("lti_registration_invites")
