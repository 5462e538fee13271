"""Leases in the database: one holder at a time, across processes and machines, until an expiry.

A lease is a row of `job_states` (the scheduler keeps one per job there, with when it last ran and a memo
for its next run; the CLI takes the same rows, so it never runs a job's work beside the scheduler). It is
won by one conditional UPDATE — "free or expired, so ours" — that only one contender can win: SQLite
serialises writers (`BEGIN IMMEDIATE`), and PostgreSQL re-checks the WHERE of an UPDATE that waited for
another's row lock against the row that one committed. A holder that dies blocks others until the expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from studyshelf.core.db import Base, affected_rows, insert_missing, unit_of_work


class JobState(Base):
    """One lease and, for scheduled jobs, when the job last ran and what it left for its next run."""

    __tablename__ = "job_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    lease_holder: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    memo: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    memo: str  # what the last holder left for the next one


def acquire(
    sessions: sessionmaker[Session],
    name: str,
    *,
    holder: str,
    now: datetime,
    ttl: timedelta,
    idle_since: datetime | None = None,
) -> Lease | None:
    """Take the lease if it is free or expired — and, given `idle_since`, only if its last run ended before
    then — in a transaction of its own; None when another holder has it (or it ran too recently)."""
    with unit_of_work(sessions) as db:
        insert_missing(db, JobState, {"name": name, "memo": ""})
        conditions = [JobState.name == name, or_(JobState.lease_until.is_(None), JobState.lease_until < now)]
        if idle_since is not None:
            conditions.append(or_(JobState.last_run_at.is_(None), JobState.last_run_at < idle_since))
        won = db.execute(update(JobState).where(*conditions).values(lease_holder=holder, lease_until=now + ttl))
        if affected_rows(won) != 1:
            return None
        memo = db.scalar(select(JobState.memo).where(JobState.name == name))
        return Lease(name, holder, memo or "")


def renew(sessions: sessionmaker[Session], lease: Lease, *, now: datetime, ttl: timedelta) -> bool:
    """Push the lease's expiry to `now + ttl` (between units of long work); False if it was lost meanwhile."""
    with unit_of_work(sessions) as db:
        kept = db.execute(
            update(JobState)
            .where(JobState.name == lease.name, JobState.lease_holder == lease.holder)
            .values(lease_until=now + ttl)
        )
        return affected_rows(kept) == 1


def release(
    sessions: sessionmaker[Session], lease: Lease, *, finished_at: datetime | None = None, memo: str | None = None
) -> None:
    """Let go of the lease (if still ours); `finished_at` and `memo` record a run for the next holder."""
    values: dict[str, Any] = {"lease_holder": None, "lease_until": None}
    if finished_at is not None:
        values["last_run_at"] = finished_at
    if memo is not None:
        values["memo"] = memo
    with unit_of_work(sessions) as db:
        db.execute(
            update(JobState).where(JobState.name == lease.name, JobState.lease_holder == lease.holder).values(**values)
        )


def expiry(sessions: sessionmaker[Session], name: str) -> datetime | None:
    """When the lease's current holding ends at the latest (None when free)."""
    with unit_of_work(sessions) as db:
        return db.scalar(select(JobState.lease_until).where(JobState.name == name))
