"""A small scheduler: every app instance runs it, a lease in the database lets one instance run each job."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from studyshelf.analytics import jobs as analytics_jobs
from studyshelf.analytics.reports.delivery import deliver_due as deliver_reports
from studyshelf.analytics.reports.rollup import ROLLUPS_JOB, rollup_job
from studyshelf.core import lease
from studyshelf.library import jobs as library_jobs
from studyshelf.lti.jobs import prune_spent_nonces
from studyshelf.notify import jobs as notify_jobs
from studyshelf.ops.jobs import evaluate_alarms
from studyshelf.ops.metrics import JOB_DURATION, JOB_RUNS
from studyshelf.partners.jobs import prune_login_failures
from studyshelf.services import Services

log = logging.getLogger("studyshelf.jobs")
LEASE_TTL = timedelta(minutes=30)  # a crashed instance blocks a job no longer than this
RENEW_EVERY = LEASE_TTL / 6  # a running job's lease is renewed this often


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
    Job(ROLLUPS_JOB, timedelta(minutes=15), rollup_job),
    Job("analytics.reports", timedelta(minutes=15), deliver_reports),
    Job("lti.nonces", timedelta(hours=1), prune_spent_nonces),
    Job("partners.login_failures", timedelta(hours=1), prune_login_failures),
    Job("notify.outbox", timedelta(minutes=1), notify_jobs.drain_outbox),
    Job("ops.alarms", timedelta(minutes=1), evaluate_alarms),
)


def _purge(services: Services) -> str:
    items, blobs = library_jobs.purge_trash(services)
    return f"purged {items} items, {blobs} blobs"


def run_due_jobs(
    services: Services,
    *,
    holder: str | None = None,
    jobs: Sequence[Job] = JOBS,
    renew_every: float = RENEW_EVERY.total_seconds(),
) -> list[str]:
    """Run every job that is due and whose lease this instance wins; return their names.

    While a job runs, its lease is renewed every `renew_every` seconds, so another instance never takes
    over a job that is still running, however long it takes (and whatever skew the clocks have)."""
    holder = holder or uuid.uuid4().hex
    ran = []
    for job in jobs:
        now = services.clock.now()
        leased = lease.acquire(
            services.write_sessions, job.name, holder=holder, now=now, ttl=LEASE_TTL, idle_since=now - job.every
        )
        if leased is None:
            continue
        memo = leased.memo
        started, outcome = time.monotonic(), "ok"
        with _kept(services, leased, every=renew_every):
            try:
                memo = job.run(services, memo)
                log.info("job %s: %s", job.name, memo[:200])
            except Exception:
                outcome = "failed"
                log.exception("job %s failed", job.name)
        JOB_RUNS.labels(job.name, outcome).inc()
        JOB_DURATION.labels(job.name).observe(time.monotonic() - started)
        lease.release(services.write_sessions, leased, finished_at=services.clock.now(), memo=memo)
        ran.append(job.name)
    return ran


@contextmanager
def _kept(services: Services, leased: lease.Lease, *, every: float) -> Iterator[None]:
    """Renew `leased` in a daemon thread until the block ends."""
    done = threading.Event()

    def keep() -> None:
        while not done.wait(every):
            try:
                if not lease.renew(services.write_sessions, leased, now=services.clock.now(), ttl=LEASE_TTL):
                    log.error("job %s lost its lease while running", leased.name)
                    return
            except Exception:
                log.exception("job %s: its lease could not be renewed", leased.name)

    keeper = threading.Thread(target=keep, name=f"studyshelf-lease-{leased.name}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


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
