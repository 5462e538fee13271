"""/metrics: who may read it, what requests, bytes and uploads count, and that workers' samples add up."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from studyshelf.app import create_app
from studyshelf.jobs import runner
from studyshelf.jobs.runner import Job
from studyshelf.ops import metrics
from studyshelf.ops.metrics import REQUEST_BUCKETS, mark_dead_workers, prepare_multiprocess_dir
from studyshelf.partners.deps import DbSession
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.analytics.conftest import CHROME, drain
from tests.analytics.support import event
from tests.conftest import Member, World
from tests.html import parse_html
from tests.links.support import EMBEDDED, create_link, link_path
from tests.storage_crash.test_kill import free_port, wait_for

TOKEN = "metrics-token-0123456789"
PROBLEMS = "https://studyshelf.dev/problems/"
LOOPBACK = ("127.0.0.1", 4000)
OUTSIDE = ("203.0.113.9", 4000)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def guarded(world: World) -> FastAPI:
    """The app with a metrics token and a trusted proxy at 10.0.0.0/8."""
    update = {"metrics_token": SecretStr(TOKEN), "trusted_proxies": ["10.0.0.0/8"]}
    return create_app(services=replace(world.services, settings=world.services.settings.model_copy(update=update)))


@pytest.mark.parametrize(
    ("peer", "headers", "allowed"),
    [
        (LOOPBACK, {}, True),
        (("::1", 4000), {}, True),
        (OUTSIDE, {}, False),
        (OUTSIDE, {"Authorization": f"Bearer {TOKEN}"}, True),
        (OUTSIDE, {"Authorization": "Bearer not-the-token"}, False),
        (LOOPBACK, {"Authorization": "Bearer not-the-token"}, True),  # the network alone suffices
        (("10.1.2.3", 4000), {"X-Forwarded-For": "127.0.0.1"}, True),  # a trusted proxy forwards a loopback client
        (("10.1.2.3", 4000), {"X-Forwarded-For": "198.51.100.7"}, False),
        (OUTSIDE, {"X-Forwarded-For": "127.0.0.1"}, False),  # an untrusted peer cannot claim loopback
        (("testclient", 4000), {}, False),
    ],
)
def test_metrics_open_to_allowed_networks_or_the_token(
    guarded: FastAPI, peer: tuple[str, int], headers: dict[str, str], allowed: bool
) -> None:
    answer = TestClient(guarded, client=peer).get("/metrics", headers=headers)
    if allowed:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert "studyshelf_http_requests_total" in answer.text
    else:
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == f"{PROBLEMS}permission-denied"


def test_a_network_list_in_settings_opens_metrics_to_it(world: World) -> None:
    settings = world.services.settings.model_copy(update={"metrics_allow": ["203.0.113.0/24"]})
    app = create_app(services=replace(world.services, settings=settings))
    assert TestClient(app, client=OUTSIDE).get("/metrics").status_code == 200
    assert TestClient(app, client=LOOPBACK).get("/metrics").status_code == 403  # the list replaces the default


def test_requests_count_by_route_template_method_and_status_class(owner: Member) -> None:
    route = "/api/v1/folders/{folder_id}/children"
    ok_before = sample("studyshelf_http_requests_total", route=route, method="GET", status_class="2xx")
    missing_before = sample("studyshelf_http_requests_total", route=route, method="GET", status_class="4xx")
    unmatched_before = sample("studyshelf_http_requests_total", route="unmatched", method="GET", status_class="4xx")
    timed_before = sample("studyshelf_http_request_duration_seconds_count", route=route, method="GET")
    for _ in range(3):
        assert owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").status_code == 200
    assert owner.client.get("/api/v1/folders/00000000-0000-7000-8000-000000000000/children").status_code == 404
    assert owner.client.get("/no/such/page").status_code == 404
    assert sample("studyshelf_http_requests_total", route=route, method="GET", status_class="2xx") == ok_before + 3
    assert sample("studyshelf_http_requests_total", route=route, method="GET", status_class="4xx") == missing_before + 1
    assert (
        sample("studyshelf_http_requests_total", route="unmatched", method="GET", status_class="4xx")
        == unmatched_before + 1
    )
    assert sample("studyshelf_http_request_duration_seconds_count", route=route, method="GET") == timed_before + 4


def test_the_latency_histogram_has_buckets_up_to_ten_seconds(owner: Member) -> None:
    owner.client.get("/healthz")
    body = TestClient(owner.client.app, client=LOOPBACK).get("/metrics").text
    found = re.findall(
        r'studyshelf_http_request_duration_seconds_bucket\{le="([^"]+)",method="GET",route="/healthz"\}', body
    )
    assert [float(le) for le in found] == [*REQUEST_BUCKETS, float("inf")]
    assert REQUEST_BUCKETS[-1] == 10.0
    infinite = sample("studyshelf_http_request_duration_seconds_bucket", route="/healthz", method="GET", le="+Inf")
    assert infinite == sample("studyshelf_http_request_duration_seconds_count", route="/healthz", method="GET")


def test_uploads_and_bytes_served_by_family(owner: Member) -> None:
    content = os.urandom(40_000)
    uploads_ok, uploads_failed = (
        sample("studyshelf_uploads_total", outcome="ok"),
        sample("studyshelf_uploads_total", outcome="failed"),
    )
    upload_bytes = sample("studyshelf_upload_bytes_total")
    downloaded = sample("studyshelf_bytes_served_total", family="download")
    stored = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("data.bin", content, "application/octet-stream")},
        headers=owner.headers(),
    )
    assert stored.status_code == 201, stored.text
    refused = owner.client.post(
        "/api/v1/folders/00000000-0000-7000-8000-000000000000/files",
        files={"file": ("data.bin", b"x", "application/octet-stream")},
        headers=owner.headers(),
    )
    assert refused.status_code == 404
    assert sample("studyshelf_uploads_total", outcome="ok") == uploads_ok + 1
    assert sample("studyshelf_uploads_total", outcome="failed") == uploads_failed + 1
    assert sample("studyshelf_upload_bytes_total") - upload_bytes >= len(content)  # the multipart body around it
    for _ in range(2):  # the second read is answered by the member fast path, before the router
        answer = owner.client.get(f"/api/v1/files/{stored.json()['id']}/content")
        assert answer.content == content
    assert sample("studyshelf_bytes_served_total", family="download") == downloaded + 2 * len(content)


def test_the_dead_workers_live_gauges_are_dropped(tmp_path: Path) -> None:
    directory = prepare_multiprocess_dir(tmp_path / "metrics")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(gone.stdout)
    for name in (f"gauge_livesum_{dead_pid}.db", f"counter_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"):
        (directory / name).touch()
    assert mark_dead_workers(directory) == [dead_pid]
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"gauge_livesum_{os.getpid()}.db"]
    )  # its counts still count; only what it has in flight stops
    assert prepare_multiprocess_dir(directory) == directory
    assert list(directory.iterdir()) == []


class Served:
    """`studyshelf serve --workers 2` in its own process group, with its stderr in a file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDYSHELF_", "PROMETHEUS_"))}
        env |= {
            "STUDYSHELF_DATA_DIR": str(data_dir),
            "STUDYSHELF_SECRET_KEY": "metrics-test-secret-key-that-is-long-enough-0123456789",
            "STUDYSHELF_ENVIRONMENT": "test",
            "STUDYSHELF_SCHEDULER_INTERVAL_SECONDS": "0",
        }
        data_dir.mkdir(parents=True)
        self.log = data_dir / "server.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
                [
                    str(Path(sys.executable).with_name("studyshelf")),
                    "serve",
                    "--workers",
                    "2",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        wait_for(self._up, timeout=90, what="the server to start")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read().decode()
        finally:
            conn.close()

    def healthz_count(self) -> float:
        status, body = self.get("/metrics")
        assert status == 200, body
        found = re.search(
            r'^studyshelf_http_requests_total\{method="GET",route="/healthz",status_class="2xx"\} (\S+)$', body, re.M
        )
        return float(found.group(1)) if found else 0.0

    def healthz_count_per_worker(self) -> dict[str, float]:
        """Each worker's own count, read from the file it writes."""
        counts = {}
        for file in (self.data_dir / "metrics").glob("counter_*.db"):
            merged = MultiProcessCollector.merge([str(file)])  # type: ignore[no-untyped-call]  # untyped upstream
            counts[file.stem.removeprefix("counter_")] = sum(
                s.value
                for metric in merged
                for s in metric.samples
                if s.name == "studyshelf_http_requests_total" and s.labels.get("route") == "/healthz"
            )
        return counts

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("serve") / "data")
    yield server
    server.stop()


def test_workers_samples_add_up_on_metrics(served: Served) -> None:
    before = served.healthz_count()
    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=8) as pool:
        while sum(1 for count in served.healthz_count_per_worker().values() if count) < 2:
            assert time.monotonic() < deadline, "one worker answered every request"
            statuses = list(pool.map(lambda _: served.get("/healthz")[0], range(16)))
            assert statuses == [200] * 16
            sent += 16
    assert served.healthz_count() == before + sent
    assert sum(served.healthz_count_per_worker().values()) == before + sent


def test_served_logs_are_json_access_lines_without_addresses(served: Served) -> None:
    served.get("/healthz")
    wait_for(lambda: "studyshelf.access" in served.log.read_text(), timeout=10, what="an access line")
    logged = [json.loads(line) for line in served.log.read_text().splitlines()]  # every line is JSON
    access = [line for line in logged if line["logger"] == "studyshelf.access"]
    assert access
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", a["request_id"]) for a in access
    )
    assert "127.0.0.1" not in served.log.read_text()  # granian's own "listening on" line included: [ip]


def test_viewer_outcomes_beacons_and_the_drain_are_counted(world: World, owner: Member) -> None:
    views, revoked = (
        sample("studyshelf_viewer_views_total"),
        sample("studyshelf_viewer_refusals_total", reason="revoked"),
    )
    loads_ok = sample("studyshelf_beacon_loads_total", outcome="load_ok")
    writes = sample("studyshelf_warehouse_write_seconds_count")
    viewer_bytes = sample("studyshelf_bytes_served_total", family="viewer")
    stored = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("notes.txt", b"lecture notes", "text/plain")},
        headers=owner.headers(),
    )
    link = create_link(owner, stored.json()["id"])
    learner = TestClient(world.app, base_url="http://testserver")
    page = learner.get(link_path(link), headers={**EMBEDDED, "user-agent": CHROME})
    token = parse_html(page).attr("[data-beacon-token]", "data-beacon-token")
    beacon = {"token": token, "type": "load_ok", "seq": 0, "t": int(time.time() * 1000), "load_ms": 300}
    assert learner.post("/api/v1/events", json=beacon, headers={"user-agent": CHROME}).status_code == 204
    assert owner.client.post(f"/api/v1/links/{link.json()['id']}/revoke", headers=owner.headers()).status_code == 200
    assert learner.get(link_path(link), headers={**EMBEDDED, "user-agent": CHROME}).status_code == 403
    assert sample("studyshelf_viewer_views_total") == views + 1
    assert sample("studyshelf_viewer_refusals_total", reason="revoked") == revoked + 1
    assert sample("studyshelf_beacon_loads_total", outcome="load_ok") == loads_ok + 1
    assert sample("studyshelf_bytes_served_total", family="viewer") > viewer_bytes + len(page.content)
    assert drain(world.services) == 3  # the view, the beacon, the refusal
    assert sample("studyshelf_warehouse_write_seconds_count") > writes
    assert 0 <= sample("studyshelf_event_ingest_lag_seconds") < 60
    drain(world.services)  # an empty read: caught up
    assert sample("studyshelf_event_ingest_lag_seconds") == 0


def test_job_runs_and_failures_are_counted(services: Services) -> None:
    def failing(_services: Services, _memo: str) -> str:
        raise RuntimeError("the job broke")

    jobs = (
        Job("test.fine", timedelta(hours=1), lambda _s, memo: memo),
        Job("test.broken", timedelta(hours=1), failing),
    )
    fine, broken = (
        sample("studyshelf_job_runs_total", job="test.fine", outcome="ok"),
        sample("studyshelf_job_runs_total", job="test.broken", outcome="failed"),
    )
    assert runner.run_due_jobs(services, holder="metrics", jobs=jobs) == ["test.fine", "test.broken"]
    assert sample("studyshelf_job_runs_total", job="test.fine", outcome="ok") == fine + 1
    assert sample("studyshelf_job_runs_total", job="test.broken", outcome="failed") == broken + 1
    assert sample("studyshelf_job_duration_seconds_count", job="test.broken") >= 1


def test_the_database_pool_is_watched(world: World) -> None:
    def inside(db: DbSession) -> dict[str, float]:
        db.execute(text("SELECT 1"))
        return {"in_use": sample("studyshelf_db_pool_in_use")}

    world.app.add_api_route("/test-pool", inside)
    before = sample("studyshelf_db_pool_in_use")
    assert TestClient(world.app).get("/test-pool").json() == {"in_use": before + 1}
    assert sample("studyshelf_db_pool_in_use") == before  # given back when the request ended
    assert sample("studyshelf_db_pool_size") == world.services.engine.pool.size()  # type: ignore[attr-defined]  # QueuePool


def test_a_metrics_network_that_is_not_one_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="STUDYSHELF_METRICS_ALLOW: 'localhost' is not an IP network"):
        Settings(data_dir=tmp_path, secret_key="s" * 64, metrics_allow=["localhost"])


def test_a_process_counting_in_memory_answers_from_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's single worker runs inside `serve`, which imported prometheus-client before setting the directory."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(prepare_multiprocess_dir(tmp_path / "metrics")))
    metrics.HTTP_REQUESTS.labels("/in-memory", "GET", "2xx").inc()
    assert b'route="/in-memory"' in metrics.exposition()


def test_made_up_methods_do_not_become_label_values(world: World) -> None:
    def by_method(method: str) -> float:
        (family,) = [f for f in REGISTRY.collect() if f.name == "studyshelf_http_requests"]
        return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["method"] == method)

    before = by_method("other")
    assert TestClient(world.app).request("BREW", "/healthz").status_code == 405
    assert by_method("other") == before + 1
    assert by_method("BREW") == 0


def test_the_event_buffer_depth_is_read_at_each_scrape(world: World) -> None:
    world.services.events.publish([event(), event(), event()])
    scraped = TestClient(world.app, client=LOOPBACK).get("/metrics")
    assert scraped.status_code == 200
    assert sample("studyshelf_event_buffer_depth") == world.services.events.backlog() >= 3
    assert "studyshelf_event_buffer_depth" in scraped.text
    drain(world.services)
    TestClient(world.app, client=LOOPBACK).get("/metrics")
    assert sample("studyshelf_event_buffer_depth") == 0
