"""Two instances' schedulers never run the same job at once, however long it runs."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from studyshelf.core import lease
from studyshelf.core.clock import MovableClock
from studyshelf.jobs.runner import LEASE_TTL, Job, run_due_jobs
from studyshelf.services import Services
from tests.cluster.conftest import DEADLINE, Cluster, wait_for


@pytest.fixture
def shared_store() -> str:
    return "db"  # leases are rows of job_states


class Recorder:
    """A job body that stays running until the test lets it go, and remembers who ran it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.finish = threading.Event()
        self.runs: list[str] = []
        self.running = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def job(self, name: str) -> Job:
        def run(services: Services, _memo: str) -> str:
            with self._lock:
                self.running += 1
                self.overlapped |= self.running > 1
                self.runs.append(str(id(services)))
            self.started.set()
            assert self.finish.wait(DEADLINE), "the test never let the job finish"
            with self._lock:
                self.running -= 1
            return "done"

        return Job(name, timedelta(minutes=5), run)


def test_a_job_runs_on_one_instance_while_the_other_is_refused(cluster: Cluster) -> None:
    recorder = Recorder()
    job = recorder.job("cluster.test")
    first = threading.Thread(target=run_due_jobs, args=(cluster.a,), kwargs={"jobs": [job]})
    first.start()
    assert recorder.started.wait(DEADLINE)
    assert run_due_jobs(cluster.b, jobs=[job]) == []  # A holds the lease
    recorder.finish.set()
    first.join(DEADLINE)
    assert recorder.runs == [str(id(cluster.a))]
    assert not recorder.overlapped


def test_a_long_running_job_keeps_its_lease(cluster: Cluster) -> None:
    recorder = Recorder()
    job = recorder.job("cluster.long")
    first = threading.Thread(target=run_due_jobs, args=(cluster.a,), kwargs={"jobs": [job], "renew_every": 0.05})
    first.start()
    assert recorder.started.wait(DEADLINE)
    held_until = lease.expiry(cluster.a.write_sessions, job.name)
    assert held_until is not None
    for instance in (cluster.a, cluster.b):  # the job has run longer than a lease lasts
        clock = instance.clock
        assert isinstance(clock, MovableClock)
        clock.advance((LEASE_TTL + timedelta(minutes=1)).total_seconds())
    # A's keeper renews the lease from A's clock.
    wait_for(
        lambda: (lease.expiry(cluster.a.write_sessions, job.name) or held_until) > cluster.a.clock.now(), "a renewal"
    )
    assert run_due_jobs(cluster.b, jobs=[job]) == []
    recorder.finish.set()
    first.join(DEADLINE)
    assert recorder.runs == [str(id(cluster.a))]
    assert not recorder.overlapped
