"""captions: WebVTT tracks beside video and audio files, one per language

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 04:00:00

Issue 19, point 3. A caption's bytes are a blob like a version's (content-addressed, backed up, encrypted
where enabled); the row says which file, which language, its label and whether it is the default.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import studyshelf.core.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("cues", sa.Integer(), nullable=False),
        sa.Column("source_format", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", studyshelf.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["blob_sha256"], ["blobs.sha256"], name=op.f("fk_captions_blob_sha256_blobs")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_captions_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_captions_file_id_files"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captions")),
        sa.UniqueConstraint("file_id", "language", name="uq_captions_file_language"),
    )
    op.create_index(op.f("ix_captions_file_id"), "captions", ["file_id"], unique=False)
    op.create_index(op.f("ix_captions_blob_sha256"), "captions", ["blob_sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_captions_blob_sha256"), table_name="captions")
    op.drop_index(op.f("ix_captions_file_id"), table_name="captions")
    op.drop_table("captions")
