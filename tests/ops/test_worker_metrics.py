"""`studyshelf worker` serves its own /metrics on loopback: its drain (events stored, failures, ingest lag), the jobs of
its minute tick (the alarm evaluation) and their durations; and the drainer's ingest lag is the buffer's."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from studyshelf.analytics.ingest import drain
from studyshelf.core.clock import MovableClock, utcnow
from studyshelf.events.memory import MemoryEventStream
from studyshelf.events.redis_streams import RedisStreamsEventStream
from studyshelf.jobs.runner import Job, run_due_jobs
from studyshelf.ops.metrics import serve_worker_metrics
from studyshelf.services import Services
from tests.analytics.support import REDIS_URL, event, redis_available
from tests.conftest import require_service
from tests.storage_crash.test_kill import free_port, wait_for

SECRET = "worker-metrics-test-secret-key-long-enough-0123456789"
STUDYSHELF = str(Path(sys.executable).with_name("studyshelf"))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_worker_metrics_server_answers_on_loopback_with_job_runs(services: Services) -> None:
    server = serve_worker_metrics("127.0.0.1", free_port())
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"

        def failing(_services: Services, _memo: str) -> str:
            raise RuntimeError("the job broke")

        run_due_jobs(services, holder="worker", jobs=(Job("test.worker_job", timedelta(hours=1), failing),))
        answer = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics")
        assert answer.status_code == 200
        found = samples(answer.text)
        assert found[("studyshelf_job_runs_total", (("job", "test.worker_job"), ("outcome", "failed")))] >= 1
        assert ("studyshelf_job_duration_seconds_count", (("job", "test.worker_job"),)) in found
        assert ("studyshelf_drain_failures_total", ()) in found
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_leaves_the_worker_draining_without_metrics() -> None:
    first = serve_worker_metrics("127.0.0.1", free_port())
    assert first is not None
    try:
        assert serve_worker_metrics("127.0.0.1", first.server_port) is None
        assert serve_worker_metrics("127.0.0.1", 0) is None  # 0: off
    finally:
        first.shutdown()
        first.server_close()


def test_the_ingest_lag_gauge_is_the_wait_of_the_oldest_undrained_event() -> None:
    stream = MemoryEventStream(clock=MovableClock(utcnow() - timedelta(minutes=2)))  # accepted two minutes ago
    stream.publish([event(ts=utcnow())])
    drain.observe_lag(stream)
    assert (REGISTRY.get_sample_value("studyshelf_event_ingest_lag_seconds") or 0) >= 120
    stream.ack(stream.read(consumer="c1"))
    drain.observe_lag(stream)
    assert REGISTRY.get_sample_value("studyshelf_event_ingest_lag_seconds") == 0


@pytest.fixture
def stream_name() -> Iterator[str]:
    require_service(redis_available(), "Redis")
    name = f"studyshelf:test:{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name, f"{name}:backlog")
    client.close()


def test_studyshelf_worker_serves_its_drain_and_alarm_job_metrics(tmp_path: Path, stream_name: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDYSHELF_", "PROMETHEUS_"))}
    env |= {
        "STUDYSHELF_SECRET_KEY": SECRET,
        "STUDYSHELF_ENVIRONMENT": "test",
        "STUDYSHELF_DATA_DIR": str(tmp_path / "data"),
        "STUDYSHELF_REDIS_URL": REDIS_URL,
        "STUDYSHELF_REDIS_STREAM": stream_name,
        "STUDYSHELF_ALARM_INTERVAL_SECONDS": "1",
        "STUDYSHELF_WORKER_METRICS_PORT": str(port),
    }
    subprocess.run([STUDYSHELF, "migrate"], env=env, check=True, capture_output=True, timeout=120)  # noqa: S603
    stream = RedisStreamsEventStream(REDIS_URL, stream=stream_name)
    stream.publish([event(), event()])
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        [STUDYSHELF, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def scraped() -> bool:
        nonlocal found
        try:
            found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        except httpx.TransportError:
            return False
        alarm_runs = found.get(("studyshelf_job_runs_total", (("job", "ops.alarms"), ("outcome", "ok"))), 0)
        return found.get(("studyshelf_events_stored_total", ()), 0) >= 2 and alarm_runs >= 1

    try:
        wait_for(scraped, timeout=60, what="the worker's /metrics to show its drain and its alarm job")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        stream.close()
    assert found[("studyshelf_event_ingest_lag_seconds", ())] == 0  # drained
    assert ("studyshelf_job_duration_seconds_count", (("job", "ops.alarms"),)) in found
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
