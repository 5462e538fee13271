"""Request signals: each process counts its requests per minute (thread-safe, fixed latency buckets) and writes
its own rows; readers add every process up and take the p95 from the merged buckets."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.app import create_app
from studyshelf.core.db import unit_of_work
from studyshelf.ops import signals
from studyshelf.ops.models import RequestMinute
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings

MINUTE = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> float:
    return MINUTE.timestamp() + seconds


def test_the_p95_is_the_bucket_that_holds_the_95th_request() -> None:
    tally = signals.RequestTally()
    for index in range(100):
        tally.record(2.0 if index < 6 else 0.04, 200, _at(index % 60))
    (counts,) = tally.take(before=None).values()
    assert counts.requests == 100
    assert counts.p95_seconds == 2.0  # 6 % slow: the 95th is one of them
    assert signals.percentile([0, 0, 0, 96, 4] + [0] * 10, 0.95) == 0.05
    assert signals.percentile([0] * 15, 0.95) is None
    assert signals.percentile([0] * 14 + [1], 0.95) == 20.0  # slower than every bucket


def test_only_finished_minutes_are_taken_unless_final() -> None:
    tally = signals.RequestTally()
    tally.record(0.1, 200, _at(10))
    tally.record(0.1, 503, _at(70))
    assert list(tally.take(before=_at(65))) == [int(MINUTE.timestamp() // 60)]
    (rest,) = tally.take(before=None).values()
    assert (rest.requests, rest.errors_5xx) == (1, 1)


def test_recording_from_many_threads_loses_nothing() -> None:
    tally = signals.RequestTally()

    def serve() -> None:
        for index in range(2000):
            tally.record(0.01 * (index % 7), 500 if index % 10 == 0 else 200, _at(index % 60))

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (counts,) = tally.take(before=None).values()
    assert (counts.requests, counts.errors_5xx, sum(counts.buckets)) == (16000, 1600, 16000)


def _worker(settings: Settings, requests: int, errors: int) -> None:
    """A worker process: its own tally, its own instance id, its own rows."""
    signals.TALLY.take(before=None)  # a forked child starts with a copy of the parent's counts
    services = build_services(settings)
    try:
        for index in range(requests):
            signals.record_request(0.2, 500 if index < errors else 200, _at(index % 60))
        signals.flush(services, final=True)
    finally:
        services.engine.dispose()


def test_every_worker_process_writes_its_own_rows_and_readers_add_them_up(services: Services) -> None:
    fork = multiprocessing.get_context("fork")  # quick to start; each child has its own pid, tally and rows
    workers = [fork.Process(target=_worker, args=(services.settings, n, e)) for n, e in ((30, 3), (50, 1))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with unit_of_work(services.read_sessions) as db:
        instances = set(db.scalars(select(RequestMinute.instance)))
        total = signals.window(db, start=MINUTE, end=MINUTE + timedelta(minutes=1))
    assert len(instances) == 2
    assert (total.requests, total.errors_5xx) == (80, 4)
    assert total.error_rate == 0.05
    assert total.p95_seconds == 0.25


def test_the_middleware_counts_answers_and_flushes_at_shutdown(services: Services) -> None:
    app = create_app(services=services)

    @app.get("/test-unavailable")
    def unavailable() -> Response:
        return Response(status_code=503)

    signals.TALLY.take(before=None)  # forget what apps of other tests in this process counted
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/no-such-page").status_code == 404
        assert client.get("/test-unavailable").status_code == 503
    with unit_of_work(services.read_sessions) as db:
        now = datetime.now(UTC)
        total = signals.window(db, start=now - timedelta(minutes=5), end=now + timedelta(minutes=1))
    assert (total.requests, total.errors_5xx) == (3, 1)


def test_old_minutes_are_pruned(services: Services) -> None:
    tally = signals.RequestTally()
    tally.record(0.1, 200, _at(0))
    tally.record(0.1, 200, _at(3 * 86400))
    signals.flush(services, tally=tally, final=True, instance="web-1")
    with unit_of_work(services.write_sessions) as db:
        assert signals.prune(db, now=MINUTE + timedelta(days=3)) == 1
    with unit_of_work(services.read_sessions) as db:
        assert signals.window(db, start=MINUTE, end=MINUTE + timedelta(days=4)).requests == 1
