"""Alembic environment: runs against the engine handed in by studyshelf.core.migrate."""

from __future__ import annotations

from alembic import context

from studyshelf.analytics import models as _beacon_models  # noqa: F401 - registers tables
from studyshelf.analytics.reports import models as _analytics_models  # noqa: F401 - registers tables
from studyshelf.core.db import Base
from studyshelf.delivery import models as _delivery_models  # noqa: F401 - registers tables
from studyshelf.core import lease as _lease  # noqa: F401 - registers the job_states table
from studyshelf.library import access_epoch as _access_epoch  # noqa: F401 - registers the access_epoch table
from studyshelf.library import models as _library_models  # noqa: F401 - registers tables
from studyshelf.limits import database as _limits_database  # noqa: F401 - registers the cluster_limits table
from studyshelf.media import models as _media_models  # noqa: F401 - registers tables
from studyshelf.lti import models as _lti_models  # noqa: F401 - registers tables
from studyshelf.notify import models as _notify_models  # noqa: F401 - registers tables
from studyshelf.ops import models as _ops_models  # noqa: F401 - registers tables
from studyshelf.partners import models as _partners_models  # noqa: F401 - registers tables

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `studyshelf migrate`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
