"""The rollups' lock: the scheduler's lease on the `analytics.rollups` job, also taken by the CLI.

The scheduler (jobs/runner.py) wins a job's lease with a conditional UPDATE of its `job_states` row before
running it. `studyshelf reports run|backfill` take the same row the same way, so the CLI and the scheduler
of any app instance never roll days at the same time. `jobs` sits above `analytics` in the layers, so the
row is reached through a lightweight table clause rather than the `JobState` model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import String, Text, column, or_, select, table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from studyshelf.core.clock import utcnow
from studyshelf.core.db import UtcDateTime, affected_rows, unit_of_work
from studyshelf.core.errors import Conflict
from studyshelf.services import Services

JOB_NAME: Final = "analytics.rollups"
TTL: Final = timedelta(minutes=30)  # as long as the scheduler's own lease: a crashed holder blocks no longer

_jobs = table(
    "job_states",
    column("name", String),
    column("lease_holder", String),
    column("lease_until", UtcDateTime()),
    column("memo", Text),
)


@dataclass(frozen=True)
class Lease:
    services: Services
    holder: str

    def renew(self) -> None:
        """Push the lease's end TTL ahead (call between units of long work)."""
        with unit_of_work(self.services.write_sessions) as db:
            db.execute(
                update(_jobs)
                .where(_jobs.c.name == JOB_NAME, _jobs.c.lease_holder == self.holder)
                .values(lease_until=utcnow() + TTL)
            )


def acquire(services: Services, holder: str) -> Lease:
    """Take the rollups' lease, or raise Conflict when another process holds it."""
    now = utcnow()
    with unit_of_work(services.write_sessions) as db:
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.execute(insert(_jobs).values(name=JOB_NAME, memo="").on_conflict_do_nothing())
        claimed = db.execute(
            update(_jobs)
            .where(_jobs.c.name == JOB_NAME, or_(_jobs.c.lease_until.is_(None), _jobs.c.lease_until < now))
            .values(lease_holder=holder, lease_until=now + TTL)
        )
        if affected_rows(claimed) == 1:
            return Lease(services, holder)
        until = db.execute(select(_jobs.c.lease_until).where(_jobs.c.name == JOB_NAME)).scalar_one_or_none()
    when = f" until {until:%Y-%m-%d %H:%M} UTC at the latest" if until else ""
    raise Conflict(f"Rollups are being computed by another process{when}; try again when it has finished.")


def release(lease: Lease) -> None:
    with unit_of_work(lease.services.write_sessions) as db:
        db.execute(
            update(_jobs)
            .where(_jobs.c.name == JOB_NAME, _jobs.c.lease_holder == lease.holder)
            .values(lease_holder=None, lease_until=None)
        )


@contextmanager
def held(services: Services) -> Iterator[Lease]:
    """Hold the rollups' lease for the block (Conflict if another process has it)."""
    lease = acquire(services, f"cli-{uuid.uuid4().hex}")
    try:
        yield lease
    finally:
        release(lease)
