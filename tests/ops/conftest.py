"""Backups are of the embedded install: every test here runs on SQLite, with a backup directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from studyshelf.settings import Settings


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: Litestream replicates the embedded database (PostgreSQL is pgBackRest's)."""
    path = tmp_path / "data" / "studyshelf.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-key-that-is-long-enough-for-production-0123456789",
        max_upload_bytes=10 * 1024 * 1024,
        scheduler_interval_seconds=0,
        backup_url=str(tmp_path / "backup"),
    )
