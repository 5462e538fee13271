"""A small scheduler: every app instance runs it, a lease in the database lets one instance run each job."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from studyshelf.analytics import jobs as analytics_jobs
from studyshelf.analytics.reports.delivery import deliver_due as deliver_reports
from studyshelf.analytics.reports.rollup import rollup_job
from studyshelf.core.clock import utcnow
from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.jobs.lti_nonces import prune_spent_nonces
from studyshelf.jobs.models import JobState
from studyshelf.library import jobs as library_jobs
from studyshelf.notify import jobs as notify_jobs
from studyshelf.partners.jobs import prune_login_failures
from studyshelf.services import Services

log = logging.getLogger("studyshelf.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Services, str], str]  # takes the memo of the last run, returns the next memo


JOBS = (
    Job("library.purge_trash", timedelta(hours=6), lambda services, _memo: _purge(services)),
    Job(
        "library.collect_orphans",
        timedelta(hours=1),
        library_jobs.collect_orphans,
    ),
    Job("analytics.retention", timedelta(hours=24), analytics_jobs.apply_retention),
    Job("analytics.rollups", timedelta(minutes=15), rollup_job),
    Job("analytics.reports", timedelta(minutes=15), deliver_reports),
    Job("lti.nonces", timedelta(hours=1), prune_spent_nonces),
    Job("partners.login_failures", timedelta(hours=1), prune_login_failures),
    Job("notify.outbox", timedelta(minutes=1), notify_jobs.drain_outbox),
)


def _purge(services: Services) -> str:
    items, blobs = library_jobs.purge_trash(services)
    return f"purged {items} items, {blobs} blobs"


def _claim(services: Services, job: Job, holder: str) -> str | None:
    """Take the job's lease if it is due and free; return the last memo, or None if not ours to run."""
    now = utcnow()
    with unit_of_work(services.write_sessions) as db:
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.execute(insert(JobState).values(name=job.name, memo="").on_conflict_do_nothing())
        claimed = db.execute(
            update(JobState)
            .where(
                JobState.name == job.name,
                or_(JobState.lease_until.is_(None), JobState.lease_until < now),
                or_(JobState.last_run_at.is_(None), JobState.last_run_at < now - job.every),
            )
            .values(lease_holder=holder, lease_until=now + timedelta(minutes=30))
        )
        if affected_rows(claimed) != 1:
            return None
        state = db.get(JobState, job.name)
        return state.memo if state else ""


def _release(services: Services, job: Job, memo: str) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.execute(
            update(JobState)
            .where(JobState.name == job.name)
            .values(lease_holder=None, lease_until=None, last_run_at=utcnow(), memo=memo)
        )


def run_due_jobs(services: Services, *, holder: str | None = None) -> list[str]:
    """Run every job that is due and whose lease this instance wins; return their names."""
    holder = holder or uuid.uuid4().hex
    ran = []
    for job in JOBS:
        memo = _claim(services, job, holder)
        if memo is None:
            continue
        try:
            memo = job.run(services, memo)
            log.info("job %s: %s", job.name, memo[:200])
        except Exception:
            log.exception("job %s failed", job.name)
        _release(services, job, memo)
        ran.append(job.name)
    return ran


class Scheduler:
    """Wakes up now and then in a daemon thread and runs what is due."""

    def __init__(self, services: Services, *, interval_seconds: float = 300.0) -> None:
        self.services = services
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="studyshelf-scheduler", daemon=True)
        self._holder = uuid.uuid4().hex

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                run_due_jobs(self.services, holder=self._holder)
            except Exception:
                log.exception("scheduler pass failed")
