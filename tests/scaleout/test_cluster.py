"""The cluster works as one system: a scripted session through nginx with requests spread over two instances, then
one instance killed with SIGKILL under load — nothing fails beyond what nginx retries, and every acknowledged view
is counted once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.html import parse_html
from tests.scaleout.rig import Cluster, running_cluster, until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LECTURE = Path(__file__).parents[2] / "src/studyshelf/demo/assets/mitosis-lecture.mp4"
LMS = "https://moodle.example.edu"
EMBEDDED = {"sec-fetch-dest": "iframe", "sec-fetch-site": "cross-site", "referer": f"{LMS}/course/view.php?id=7"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
PASSWORD = "correct horse battery staple"


@dataclass
class Scene:
    """What the scripted session made, for the load test after it."""

    operator_id: str
    link_path: str
    media_path: str
    views: int = 0


@dataclass
class Load:
    """Learners opening the link and fetching a media range through nginx, counting what was answered."""

    cluster: Cluster
    scene: Scene
    threads: int = 4
    views: int = 0
    media: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, number: int) -> None:
        with httpx.Client(base_url=self.cluster.url, timeout=30) as browser:
            while not self._stop.is_set():
                number += 1000
                agent = f"{CHROME} learner-{number}"
                try:
                    page = browser.get(self.scene.link_path, headers={**EMBEDDED, "user-agent": agent})
                    ranged = browser.get(self.scene.media_path, headers={"range": "bytes=0-1023", "user-agent": agent})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    if page.status_code == 200:
                        self.views += 1
                    else:
                        self.failures.append(f"viewer {page.status_code}")
                    if ranged.status_code == 206:
                        self.media += 1
                    else:
                        self.failures.append(f"media {ranged.status_code}")

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(self.threads)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def scene(cluster: Cluster) -> Scene:
    return _scripted_session(cluster)


def _signed_in(cluster: Cluster, email: str) -> httpx.Client:
    client = httpx.Client(base_url=cluster.url, timeout=30)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def _closing(clients: contextlib.ExitStack, client: httpx.Client) -> httpx.Client:
    clients.callback(client.close)
    return client


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def _scripted_session(cluster: Cluster) -> Scene:
    with contextlib.ExitStack() as clients:
        return _script(cluster, clients)


def _script(cluster: Cluster, clients: contextlib.ExitStack) -> Scene:
    cluster.cli("org", "create", "--name", "Northwind Press", "--slug", "northwind", "--kind", "operator")
    cluster.cli("org", "create", "--name", "Lakeside University", "--slug", "lakeside", "--kind", "partner")
    cluster.cli(
        "user",
        "create",
        "--email",
        "owner@northwind.test",
        "--password",
        PASSWORD,
        "--org",
        "northwind",
        "--role",
        "owner",
    )
    cluster.cli(
        "user",
        "create",
        "--email",
        "teacher@lakeside.test",
        "--password",
        PASSWORD,
        "--org",
        "lakeside",
        "--role",
        "editor",
    )

    publisher = _closing(clients, _signed_in(cluster, "owner@northwind.test"))
    before = [cluster.processes[f"app{i}"].lines("/api/v1/me") for i in range(2)]
    for _ in range(6):  # the session cookie made on one instance is good on the other
        _ok(publisher.get("/api/v1/me"))
    after = [cluster.processes[f"app{i}"].lines("/api/v1/me") for i in range(2)]
    assert all(a > b for a, b in zip(after, before, strict=True)), f"not spread over both instances: {before} {after}"
    operator = _ok(publisher.get("/api/v1/me"))["organizations"][0]
    course = _ok(
        publisher.post("/api/v1/folders", json={"name": "Biology 101", "parent_id": operator["root_folder_id"]}), 201
    )
    lecture_bytes = LECTURE.read_bytes()
    with LECTURE.open("rb") as body:
        uploaded = publisher.post(
            f"/api/v1/folders/{course['id']}/files", files={"file": ("mitosis-lecture.mp4", body, "video/mp4")}
        )
    lecture = _ok(uploaded, 201)
    for _ in range(4):  # the bytes live in S3: every instance serves them
        content = publisher.get(f"/api/v1/files/{lecture['id']}/content", headers={"range": "bytes=0-99"})
        assert content.status_code == 206
        assert content.content == lecture_bytes[:100]

    partner_id = next(o["id"] for o in _ok(publisher.get("/api/v1/orgs")) if o["slug"] == "lakeside")
    _ok(
        publisher.post(
            "/api/v1/grants",
            json={"target_type": "folder", "target_id": course["id"], "grantee_org_id": partner_id, "level": "view"},
        ),
        201,
    )
    teacher = _closing(clients, _signed_in(cluster, "teacher@lakeside.test"))
    shared = teacher.get(f"/api/v1/files/{lecture['id']}/content", headers={"range": "bytes=0-9"})
    assert shared.status_code == 206
    assert shared.content == lecture_bytes[:10]

    link = _ok(
        teacher.post(
            "/api/v1/links",
            json={"target_type": "file", "target_id": lecture["id"], "allowed_origins": [LMS], "mode": "embed"},
        ),
        201,
    )
    learner = clients.enter_context(httpx.Client(base_url=cluster.url, timeout=30))
    page = learner.get(f"/v/{link['id']}", headers={**EMBEDDED, "user-agent": CHROME})
    assert page.status_code == 200, page.text
    viewer = parse_html(page.text)
    media = viewer.attr("video[data-media]", "src")
    token = viewer.attr("[data-beacon-token]", "data-beacon-token")
    for _ in range(4):
        ranged = learner.get(media, headers={"range": "bytes=1000-1999", "user-agent": CHROME})
        assert ranged.status_code == 206
        assert ranged.content == lecture_bytes[1000:2000]
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    beacon = {"token": token, "type": "load_ok", "seq": 0, "t": now_ms, "load_ms": 380}
    assert learner.post("/api/v1/events", json=beacon, headers={"user-agent": CHROME}).status_code == 204

    def counted() -> bool:
        totals = _ok(publisher.get("/api/v1/analytics/summary", params={"org_id": operator["id"]}))["totals"]
        return bool(totals["views"] == 1 and totals["load_ok"] == 1)

    until(counted, "the worker drained the view and the beacon into the warehouse")

    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    cluster.cli("reports", "run", "--date", yesterday)
    reports = _ok(publisher.get("/api/v1/analytics/reports", params={"org_id": operator["id"]}))
    assert reports is not None
    return Scene(operator_id=operator["id"], link_path=f"/v/{link['id']}", media_path=media, views=1)


def test_a_scripted_session_works_with_requests_alternating_between_instances(scene: Scene) -> None:
    assert scene.views == 1


def test_an_instance_killed_under_load_fails_no_request_and_loses_no_view(cluster: Cluster, scene: Scene) -> None:
    victim = cluster.processes["app0"]
    with Load(cluster, scene) as load:
        until(lambda: load.views >= 40, "the load has started")
        victim.kill()
        killed_at = load.views
        until(lambda: load.views >= killed_at + 40, "the load goes on with one instance")
        cluster.serve(0)
        restarted = cluster.processes["app0"]
        mark = restarted.lines("/v/{link_id}")
        until(lambda: restarted.lines("/v/{link_id}") > mark + 5, "the restarted instance takes requests again")
    assert load.failures == [], load.failures[:10]
    expected = scene.views + load.views
    with contextlib.closing(_signed_in(cluster, "owner@northwind.test")) as publisher:

        def views() -> int:
            summary = _ok(publisher.get("/api/v1/analytics/summary", params={"org_id": scene.operator_id}))
            return int(summary["totals"]["views"])

        until(lambda: views() >= expected, f"the warehouse counts {expected} views")
        assert views() == expected
