"""A small scheduler: every app instance runs it, a lease in the database lets one instance run each job.

It has two ticks, each its own thread: the pass over every job (STUDYSHELF_SCHEDULER_INTERVAL_SECONDS, 300 s) and
the minute tick of the jobs due every minute, the alarm evaluation and the outbox (STUDYSHELF_ALARM_INTERVAL_SECONDS,
60 s), so alarms are evaluated each minute and a long pass (a rollup) never holds them up. `studyshelf worker` runs
the minute tick alone. Ticks are timed by the services' clock, so tests move it instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

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
MINUTE_JOBS = tuple(job for job in JOBS if job.every <= timedelta(minutes=1))  # the minute tick's: alarms, outbox


def _purge(services: Services) -> str:
    items, blobs = library_jobs.purge_trash(services)
    return f"purged {items} items, {blobs} blobs"


def run_due_jobs(
    services: Services,
    *,
    holder: str | None = None,
    jobs: Sequence[Job] = JOBS,
    renew_every: float = RENEW_EVERY.total_seconds(),
    slack: timedelta = timedelta(0),
) -> list[str]:
    """Run every job that is due and whose lease this instance wins; return their names.

    A job is due once its last run ended `every` ago, less `slack`: a scheduler looking every minute passes half a
    minute, so a one-minute job that ran a few seconds after the last look is due at this one, not the next.

    While a job runs, its lease is renewed every `renew_every` seconds, so another instance never takes
    over a job that is still running, however long it takes (and whatever skew the clocks have)."""
    holder = holder or uuid.uuid4().hex
    ran = []
    for job in jobs:
        now = services.clock.now()
        leased = lease.acquire(
            services.write_sessions,
            job.name,
            holder=holder,
            now=now,
            ttl=LEASE_TTL,
            idle_since=now - job.every + slack,
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


@dataclass
class Tick:
    """Jobs the scheduler looks at every `every`, by the services' clock; `next_at` is when it looks next."""

    name: str
    every: timedelta
    jobs: Sequence[Job]
    next_at: datetime

    def seconds_left(self, now: datetime) -> float:
        return max(0.0, (self.next_at - now).total_seconds())


class Scheduler:
    """Runs each tick in a daemon thread; the first look comes one interval after the start. An interval of 0 turns
    that tick off; with the minute tick off, the pass runs the minute jobs too (each time it looks)."""

    def __init__(
        self, services: Services, *, interval_seconds: float = 300.0, alarm_interval_seconds: float = 60.0
    ) -> None:
        self.services = services
        self._stop = threading.Event()
        self._holder = uuid.uuid4().hex
        now = services.clock.now()
        self.ticks: list[Tick] = []
        if alarm_interval_seconds > 0:
            every = timedelta(seconds=alarm_interval_seconds)
            self.ticks.append(Tick("minute", every, MINUTE_JOBS, now + every))
        if interval_seconds > 0:
            every = timedelta(seconds=interval_seconds)
            jobs = [job for job in JOBS if job not in MINUTE_JOBS] if self.ticks else list(JOBS)
            self.ticks.append(Tick("pass", every, jobs, now + every))
        self._threads = [
            threading.Thread(target=self._loop, args=(tick,), name=f"studyshelf-scheduler-{tick.name}", daemon=True)
            for tick in self.ticks
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def run_due_ticks(self) -> list[str]:
        """Run the jobs of every tick whose time has come by the services' clock; return the jobs that ran."""
        return [name for tick in self.ticks for name in self._run_if_due(tick)]

    def _run_if_due(self, tick: Tick) -> list[str]:
        now = self.services.clock.now()
        if now < tick.next_at:
            return []
        tick.next_at = now + tick.every
        return run_due_jobs(self.services, holder=self._holder, jobs=tick.jobs, slack=tick.every / 2)

    def _loop(self, tick: Tick) -> None:
        while not self._stop.wait(tick.seconds_left(self.services.clock.now())):
            try:
                self._run_if_due(tick)
            except Exception:
                log.exception("scheduler tick %s failed", tick.name)
