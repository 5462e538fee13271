"""The scheduler runs each due job once across instances, and its jobs keep storage tidy."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from studyshelf.core.clock import MovableClock, utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.core.lease import JobState
from studyshelf.jobs.runner import JOBS, MINUTE_JOBS, Scheduler, run_due_jobs
from studyshelf.library.jobs import collect_orphans
from studyshelf.services import Services


def _orphan(services: Services, payload: bytes) -> str:
    writer = services.blobs.writer()
    writer.write(payload)
    return writer.commit().sha256


def test_due_jobs_run_once_then_wait_for_their_interval(services: Services) -> None:
    clock = MovableClock()
    services = replace(services, clock=clock)
    every = [job.name for job in JOBS]
    assert run_due_jobs(services, holder="a") == every
    assert run_due_jobs(services, holder="b") == []
    clock.advance(61)
    assert run_due_jobs(services, holder="b") == ["notify.outbox", "ops.alarms"]  # the jobs due every minute
    clock.advance(timedelta(days=1).total_seconds())
    assert run_due_jobs(services, holder="b") == every


def test_the_scheduler_evaluates_alarms_every_minute_and_passes_over_the_rest_every_interval(
    services: Services,
) -> None:
    clock = MovableClock()
    services = replace(services, clock=clock)
    scheduler = Scheduler(services, interval_seconds=300, alarm_interval_seconds=60)  # the defaults
    minute = ["notify.outbox", "ops.alarms"]
    others = [job.name for job in JOBS if job not in MINUTE_JOBS]
    assert [job.name for job in MINUTE_JOBS] == minute
    assert scheduler.run_due_ticks() == []  # the first look comes one interval after the start
    ran = []
    for _ in range(10):
        clock.advance(60)
        ran.append(scheduler.run_due_ticks())
    assert ran == [minute, minute, minute, minute, [*minute, *others], minute, minute, minute, minute, minute]
    clock.advance(30)
    assert scheduler.run_due_ticks() == []  # half a minute on: nothing is due


def test_a_minute_job_that_ended_late_is_due_at_the_next_look(services: Services) -> None:
    clock = MovableClock()
    services = replace(services, clock=clock)
    minute = [job.name for job in MINUTE_JOBS]
    assert run_due_jobs(services, holder="a", jobs=MINUTE_JOBS) == minute
    clock.advance(55)  # the next look, a minute after the last one: that run took 5 s
    assert run_due_jobs(services, holder="a", jobs=MINUTE_JOBS) == []  # by `every` alone, a minute would be lost
    assert run_due_jobs(services, holder="a", jobs=MINUTE_JOBS, slack=timedelta(seconds=30)) == minute


def test_without_the_minute_tick_the_pass_evaluates_alarms(services: Services) -> None:
    clock = MovableClock()
    services = replace(services, clock=clock)
    scheduler = Scheduler(services, interval_seconds=300, alarm_interval_seconds=0)
    clock.advance(60)
    assert scheduler.run_due_ticks() == []
    clock.advance(240)
    assert scheduler.run_due_ticks() == [job.name for job in JOBS]
    clock.advance(300)
    assert scheduler.run_due_ticks() == ["notify.outbox", "ops.alarms"]


def test_a_held_lease_keeps_other_instances_out(services: Services) -> None:
    run_due_jobs(services, holder="a")
    with unit_of_work(services.write_sessions) as db:
        db.execute(
            update(JobState).values(
                last_run_at=utcnow() - timedelta(days=1),
                lease_holder="a",
                lease_until=utcnow() + timedelta(minutes=10),
            )
        )
    assert run_due_jobs(services, holder="b") == []


def test_orphans_are_deleted_only_when_seen_on_two_passes(services: Services) -> None:
    digest = _orphan(services, b"bytes nobody refers to")
    memo = collect_orphans(services, "")
    assert services.blobs.exists(digest), "a blob orphaned for one pass may be an upload about to commit"
    assert digest in memo.split()
    collect_orphans(services, memo)
    assert not services.blobs.exists(digest)
