"""kill -9 in the middle: a worker draining Redis into PostgreSQL, and a server appending to its spool.

After recovery every event whose request was answered is in the warehouse, and none is there twice.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.core.clock import utcnow
from studyshelf.events.redis_streams import RedisStreamsEventStream
from studyshelf.services import build_services
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery, build_warehouse
from tests.analytics.conftest import CHROME
from tests.analytics.support import REDIS_URL, event, redis_available
from tests.conftest import World, require_service
from tests.contracts.test_warehouse import pg_warehouse_url
from tests.links.support import EMBEDDED, create_link, link_path
from tests.sharing.support import grant, partnership
from tests.storage_crash.test_kill import free_port, wait_for

pytestmark = pytest.mark.slow
SECRET = "crash-test-secret-key-that-is-long-enough-0123456789"
STUDYSHELF = str(Path(sys.executable).with_name("studyshelf"))


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHELF_")}
    env |= {"STUDYSHELF_SECRET_KEY": SECRET, "STUDYSHELF_ENVIRONMENT": "test"}
    return env | {f"STUDYSHELF_{k.upper()}": v for k, v in values.items()}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
            [STUDYSHELF, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture
def stream_and_warehouse() -> Iterator[tuple[str, str]]:
    require_service(redis_available(), "Redis")
    name = f"studyshelf:test:{uuid.uuid4().hex}"
    for url in pg_warehouse_url():
        yield name, url
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.mark.postgres
def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, stream_and_warehouse: tuple[str, str]
) -> None:
    name, url = stream_and_warehouse
    stream = RedisStreamsEventStream(REDIS_URL, stream=name, claim_idle_seconds=1)
    total = 6000
    for _ in range(0, total, 500):
        stream.publish([event() for _ in range(500)])
    warehouse = build_warehouse(url)
    env = _env(
        data_dir=str(tmp_path / "data"),
        redis_url=REDIS_URL,
        redis_stream=name,
        warehouse_url=url,
        event_claim_idle_seconds="1",
    )
    worker = _start(["worker", "--batch", "50", "--name", "doomed"], env, tmp_path / "worker.log")
    try:
        wait_for(lambda: warehouse.count() >= 500, timeout=60, what="the worker to store some events")
    finally:
        _kill(worker)
    assert warehouse.count() < total, "the worker finished before it could be killed; publish more"
    time.sleep(1.2)  # its pending batch is now idle: the next worker takes it over
    drain_all(stream, warehouse, consumer="survivor", max_count=500)
    assert warehouse.count() == total
    assert stream.backlog() == 0
    stream.close()
    warehouse.close()


class Learners:
    """Threads opening a link on a live server, each request with its own user agent, so each view gets its
    own pseudonymous viewer and a view stored twice would show as views > viewers."""

    def __init__(self, port: int, path: str, count: int = 6) -> None:
        self.port, self.path = port, path
        self.answered: list[int] = []
        self.attempted: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(count)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)

    def _run(self, n: int) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.attempted.append(n)
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", self.path, headers={**EMBEDDED, "user-agent": f"{CHROME} req-{n}"})
                if conn.getresponse().status == 200:
                    with self._lock:
                        self.answered.append(n)
            except OSError:
                pass
            finally:
                conn.close()
            n += 1000


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def test_a_server_killed_while_spooling_keeps_every_answered_view_once(tmp_path: Path, sqlite_template: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(sqlite_template, data_dir / "studyshelf.sqlite3")
    settings = Settings(environment="test", data_dir=data_dir, secret_key=SECRET, scheduler_interval_seconds=0)
    services = build_services(settings)
    world = World(services)
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    path = link_path(create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id)))
    services.engine.dispose()

    port = free_port()
    env = _env(data_dir=str(data_dir), scheduler_interval_seconds="0")
    server = _start(
        ["serve", "--server", "uvicorn", "--workers", "1", "--port", str(port)], env, tmp_path / "server.log"
    )
    learners = Learners(port, path)
    try:
        wait_for(lambda: _healthy(port), timeout=60, what="the server to start")
        learners.start()
        wait_for(lambda: len(learners.answered) >= 60, timeout=60, what="views to be answered")
    finally:
        _kill(server)
        learners.stop()

    restarted = build_services(settings)
    drain_all(restarted.events, restarted.warehouse, consumer="after-restart")
    drain_all(restarted.events, restarted.warehouse, consumer="again")
    now = utcnow()
    totals = restarted.warehouse.summary(
        SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1))
    ).totals
    assert len(learners.answered) <= totals.views <= len(learners.attempted)
    assert totals.viewers == totals.views  # nothing twice
    assert restarted.events.backlog() == 0
    restarted.events.close()
    restarted.engine.dispose()
