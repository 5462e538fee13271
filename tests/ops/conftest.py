"""Backups are of the embedded install: every test here runs on SQLite, with a backup directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from studyshelf.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: Litestream replicates the embedded database (PostgreSQL is pgBackRest's)."""
    path = tmp_path / "data" / "studyshelf.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        backup_url=str(tmp_path / "backup"),
    )
