"""Models and migrations agree (alembic check), on SQLite and on PostgreSQL, and the history is one line."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from studyshelf.core import migrate
from studyshelf.services import Services


def test_models_and_migrations_agree(services: Services) -> None:
    migrate.check(services.engine)  # raises when autogenerate would write a new migration


def test_one_linear_history() -> None:
    config = migrate.alembic_config(None)  # type: ignore[arg-type]  # reading the scripts needs no database
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1
    assert all(len(r.down_revision or ()) <= 1 or isinstance(r.down_revision, str) for r in scripts.walk_revisions())
