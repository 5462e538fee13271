"""The reference nginx configuration (deploy/nginx/studyshelf.conf) in front of two StudyShelf instances.

Real Debian nginx and two `studyshelf serve` processes (uvicorn) on loopback, sharing one SQLite database
and one data dir, with STUDYSHELF_ACCEL_REDIRECT set: the app decides, nginx sends the bytes, caches
signed media, retries on the other instance.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from studyshelf.core import migrate
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.content import ContentFacts
from studyshelf.library.folders import get_root_folder
from studyshelf.library.models import File
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.conftest import require_service
from tests.deploy import nginx_support
from tests.deploy.nginx_support import NginxSite

pytestmark = pytest.mark.timeout(240)

SECRET = "nginx-test-secret-key-that-is-long-enough-0123456789abcdef"
PREFIX = "/_protected/"
BIG = os.urandom(3 * 1024 * 1024 + 17)  # sent by nginx (X-Accel-Redirect)
SMALL = os.urandom(10 * 1024)  # sent by the app from memory, kept by nginx's media cache
START_DEADLINE = 60.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the process on port {port} exited:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing answered on port {port}:\n{log.read_text(errors='replace')[-3000:]}")


def _start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603 - our own argv


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@dataclass
class Cluster:
    nginx: NginxSite
    url: str
    app_urls: list[str]
    apps: list[subprocess.Popen[bytes]]
    services: Services
    token: str
    big: dict[str, str]
    small: dict[str, str]

    def media_url(self, file: dict[str, str], *, download: bool = False, ttl: int = 600) -> str:
        with self.services.read_sessions() as db:
            found = db.get(File, uuid.UUID(file["id"]))
            assert found is not None
            assert found.current_version is not None
            facts = ContentFacts.of(db, found, found.current_version)
            claims = facts.media_claims(scope_id="nginxtest", expires=int(time.time()) + ttl, download=download)
        return self.services.signer.sign(claims)

    def member(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_service(nginx_support.available(), "nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    data = tmp / "data"
    settings = Settings(
        environment="test", data_dir=data, secret_key=SECRET, accel_redirect=PREFIX, scheduler_interval_seconds=0
    )
    services = build_services(settings)
    migrate.upgrade(services.engine)
    with unit_of_work(services.write_sessions) as db:
        org = provision_organization(db, name="Nginx", slug="nginx", kind=OrgKind.OPERATOR)
        user = partners.create_user(db, email="owner@nginx.test", password="a-long-enough-password")
        partners.add_member(db, user=user, org=db.get(Organization, org.id) or org, role=Role.OWNER)
        _, token = partners.create_api_token(db, user=user, name="nginx test")
        root_id = get_root_folder(db, org_id=org.id).id
    port, app_ports = _free_port(), [_free_port(), _free_port()]
    env = {
        **os.environ,
        "STUDYSHELF_ENVIRONMENT": "test",
        "STUDYSHELF_DATA_DIR": str(data),
        "STUDYSHELF_SECRET_KEY": SECRET,
        "STUDYSHELF_ACCEL_REDIRECT": PREFIX,
        "STUDYSHELF_TRUSTED_PROXIES": '["127.0.0.1"]',
        "STUDYSHELF_BASE_URL": f"http://127.0.0.1:{port}",
        "STUDYSHELF_SCHEDULER_INTERVAL_SECONDS": "0",
        "STUDYSHELF_EVENT_STREAM_URL": "memory://",
    }
    studyshelf = str(Path(sys.executable).with_name("studyshelf"))
    apps: list[subprocess.Popen[bytes]] = []
    nginx_proc: subprocess.Popen[bytes] | None = None
    try:
        for app_port in app_ports:
            log = tmp / f"app-{app_port}.log"
            argv = [studyshelf, "serve", "--server", "uvicorn", "--workers", "1", "--port", str(app_port)]
            apps.append(_start(argv, log, env))
        site = nginx_support.render(tmp / "nginx", port=port, app_ports=app_ports, blob_dir=data / "blobs")
        site.check()
        nginx_log = tmp / "nginx" / "stdout.log"
        nginx_proc = _start(site.argv("-g", "daemon off;"), nginx_log)
        for app_port, proc in zip(app_ports, apps, strict=True):
            _wait_for(app_port, proc, tmp / f"app-{app_port}.log")
        _wait_for(port, nginx_proc, nginx_log)
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        uploaded = {}
        for name, body in (("lecture.bin", BIG), ("slide.bin", SMALL)):
            response = httpx.post(
                f"{url}/api/v1/folders/{root_id}/files", files={"file": (name, body)}, headers=auth, timeout=60
            )
            assert response.status_code == 201, response.text
            uploaded[name] = response.json()
        yield Cluster(
            nginx=site,
            url=url,
            app_urls=[f"http://127.0.0.1:{p}" for p in app_ports],
            apps=apps,
            services=services,
            token=token,
            big=uploaded["lecture.bin"],
            small=uploaded["slide.bin"],
        )
    finally:
        for proc in [*apps, *([nginx_proc] if nginx_proc else [])]:
            _stop(proc)
        services.warehouse.close()
        services.events.close()
        services.engine.dispose()


def test_a_member_download_is_sent_by_nginx(cluster: Cluster) -> None:
    path = cluster.big["content_url"]
    direct = httpx.get(cluster.app_urls[0] + path, headers=cluster.member())
    assert (direct.status_code, direct.content) == (200, b"")  # the app answered no body …
    assert direct.headers["x-accel-redirect"].startswith(PREFIX)
    through = httpx.get(cluster.url + path, headers=cluster.member())
    assert through.status_code == 200
    assert through.content == BIG  # … and nginx sent the bytes
    assert "x-accel-redirect" not in through.headers
    assert through.headers["etag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    for name in ("content-type", "content-disposition", "cache-control", "last-modified", "content-security-policy"):
        assert through.headers[name] == direct.headers[name], name
    assert through.headers["x-content-type-options"] == "nosniff"
    for name in ("accept-ranges", "cache-control", "content-type", "etag", "last-modified", "content-length"):
        assert len(through.headers.get_list(name)) == 1, name  # passed on once, not once more by nginx
    refused = httpx.get(cluster.url + path)
    assert refused.status_code == 401


def test_ranges_through_nginx(cluster: Cluster) -> None:
    path = cluster.big["content_url"]
    etag = f'"{hashlib.sha256(BIG).hexdigest()}"'
    ranged = httpx.get(cluster.url + path, headers={**cluster.member(), "Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == BIG[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(BIG)}"
    matching = httpx.get(cluster.url + path, headers={**cluster.member(), "Range": "bytes=0-1", "If-Range": etag})
    assert (matching.status_code, matching.content) == (206, BIG[:2])
    stale = httpx.get(cluster.url + path, headers={**cluster.member(), "Range": "bytes=0-1", "If-Range": '"old"'})
    assert (stale.status_code, len(stale.content)) == (200, len(BIG))
    media = cluster.url + cluster.media_url(cluster.big)
    tail = httpx.get(media, headers={"Range": "bytes=-5"})
    assert (tail.status_code, tail.content) == (206, BIG[-5:])
    small = cluster.url + cluster.media_url(cluster.small)
    for _ in range(2):  # the second answer comes from the cache, keyed with its Range
        part = httpx.get(small, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, SMALL[10:20])
    assert httpx.get(small).content == SMALL  # not the cached 206


def test_a_media_url_is_sent_by_nginx(cluster: Cluster) -> None:
    path = cluster.media_url(cluster.big)
    direct = httpx.get(cluster.app_urls[1] + path)
    assert (direct.status_code, direct.content) == (200, b"")
    assert direct.headers["x-accel-redirect"].startswith(PREFIX)
    through = httpx.get(cluster.url + path)
    assert (through.status_code, through.content) == (200, BIG)
    assert through.headers["cache-control"].startswith("public, max-age=")
    assert through.headers["cross-origin-resource-policy"] == "same-origin"
    assert "x-accel-redirect" not in through.headers


def test_the_cache_serves_a_verified_url_and_only_that(cluster: Cluster) -> None:
    path = cluster.media_url(cluster.small, ttl=300)
    first = httpx.get(cluster.url + path)
    second = httpx.get(cluster.url + path)
    assert (first.status_code, first.content) == (200, SMALL)
    assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")
    assert second.content == SMALL
    max_age = int(second.headers["cache-control"].rpartition("=")[2])
    assert max_age <= 300
    head, sig, name = path.rsplit("/", 2)
    forged_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    for forged in (
        f"{head}/{forged_sig}/{name}",  # another signature
        f"{head}/{sig}/{name}x",  # another file name under the same signature
        path.replace("/m/", "/m//", 1),  # the same after nginx's slash merging: a different key all the same
        path.replace("/0/", "/1/", 1),  # a download of the same bytes
    ):
        response = httpx.get(cluster.url + forged)
        assert response.status_code == 403, forged
        assert response.headers["cache-control"] == "no-store"
    assert httpx.get(cluster.url + path).headers["x-cache-status"] == "HIT"


def test_a_head_neither_counts_as_a_get_nor_poisons_the_cache(cluster: Cluster) -> None:
    for file, body in ((cluster.small, SMALL), (cluster.big, BIG)):
        url = cluster.url + cluster.media_url(file, ttl=400)
        head = httpx.head(url)
        assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(body)))
        assert httpx.get(url).content == body
    direct = httpx.head(cluster.app_urls[0] + cluster.media_url(cluster.big))
    assert "x-accel-redirect" not in direct.headers  # the app answered the HEAD itself: no bytes to count


def test_downloads_always_reach_the_app(cluster: Cluster) -> None:
    path = cluster.media_url(cluster.small, download=True)
    statuses = [httpx.get(cluster.url + path).headers["x-cache-status"] for _ in range(2)]
    assert statuses == ["BYPASS", "BYPASS"]


def test_gzip_for_text_but_not_for_bytes(cluster: Cluster) -> None:
    page = httpx.get(cluster.url + "/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    media = httpx.get(cluster.url + cluster.media_url(cluster.small), headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in media.headers


def test_one_instance_down_requests_still_succeed(cluster: Cluster) -> None:
    down = cluster.apps[1]
    os.killpg(down.pid, signal.SIGKILL)
    down.wait(10)
    paths = [cluster.big["content_url"], cluster.small["content_url"], "/healthz"]
    for _ in range(6):
        for path in paths:
            response = httpx.get(cluster.url + path, headers=cluster.member())
            assert response.status_code == 200, (path, response.text)
        assert httpx.get(cluster.url + cluster.media_url(cluster.big, download=True)).content == BIG
    # A POST is never sent twice, but one that reached no instance (connection refused) goes to the next.
    for n in range(3):
        folder = httpx.post(
            cluster.url + "/api/v1/folders",
            json={"name": f"after the kill {n}", "parent_id": cluster.big["folder_id"]},
            headers=cluster.member(),
        )
        assert folder.status_code == 201, folder.text
    assert "no live upstreams" not in cluster.nginx.error_log()
