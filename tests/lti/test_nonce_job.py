"""The scheduled `lti.nonces` job forgets spent nonces once their tokens have expired, and only those."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.jobs.runner import JOBS, run_due_jobs
from studyshelf.lti.jobs import prune_spent_nonces
from studyshelf.lti.models import UsedNonce
from studyshelf.services import Services


def test_the_scheduler_knows_the_job() -> None:
    assert "lti.nonces" in {job.name for job in JOBS}


def test_spent_nonces_past_expiry_are_removed(services: Services) -> None:
    now = utcnow()
    with unit_of_work(services.write_sessions) as db:
        db.add(UsedNonce(nonce="old", expires_at=now - timedelta(minutes=5)))
        db.add(UsedNonce(nonce="older", expires_at=now - timedelta(days=3)))
        db.add(UsedNonce(nonce="live", expires_at=now + timedelta(minutes=50)))
    assert prune_spent_nonces(services, "") == "removed 2 spent nonces"
    with unit_of_work(services.read_sessions) as db:
        assert list(db.scalars(select(UsedNonce.nonce))) == ["live"]
    assert prune_spent_nonces(services, "") == "removed 0 spent nonces"


def test_the_scheduler_runs_it(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.add(UsedNonce(nonce="old", expires_at=utcnow() - timedelta(seconds=1)))
    assert "lti.nonces" in run_due_jobs(services, holder="a")
    with unit_of_work(services.read_sessions) as db:
        assert db.get(UsedNonce, "old") is None
