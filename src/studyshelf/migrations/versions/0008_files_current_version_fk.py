"""files.current_version_id references file_versions on PostgreSQL too

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:45:00

0001 declared this foreign key inside CREATE TABLE with use_alter=True, which Alembic leaves for a later
ALTER that never ran: PostgreSQL databases lacked it (SQLite's copy of the table has it). A current
version that no longer exists is cleared first, as ON DELETE SET NULL would have done.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = "fk_files_current_version_id_file_versions"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "UPDATE files SET current_version_id = NULL WHERE current_version_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.id = files.current_version_id)"
    )
    op.create_foreign_key(NAME, "files", "file_versions", ["current_version_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(NAME, "files", type_="foreignkey")
