"""media processing: a job per file version and the files it produced (renditions, posters, thumbnails)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_jobs",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", studyshelf.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("renditions", sa.String(length=200), nullable=False),
        sa.Column("created_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["file_versions.id"],
            name=op.f("fk_media_jobs_version_id_file_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_media_jobs")),
    )
    op.create_index("ix_media_jobs_state_due", "media_jobs", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "media_outputs",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=120), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["blob_sha256"], ["blobs.sha256"], name=op.f("fk_media_outputs_blob_sha256_blobs")),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["file_versions.id"],
            name=op.f("fk_media_outputs_version_id_file_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name=op.f("pk_media_outputs")),
    )
    op.create_index(op.f("ix_media_outputs_blob_sha256"), "media_outputs", ["blob_sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_outputs_blob_sha256"), table_name="media_outputs")
    op.drop_table("media_outputs")
    op.drop_index("ix_media_jobs_state_due", table_name="media_jobs")
    op.drop_table("media_jobs")
