"""The app on the S3 store (moto): uploads, member downloads and /m/ media, streamed or presigned, and S3 failing."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import ClientDisconnect

from studyshelf.app import create_app
from studyshelf.core.clock import utcnow
from studyshelf.delivery.streaming import small_blobs
from studyshelf.library.jobs import collect_orphans, purge_trash
from studyshelf.ops.backup_blobs import copy_missing_blobs
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.storage.crypto import EncryptedBlobStore
from studyshelf.storage.local import LocalBlobStore
from studyshelf.storage.s3 import S3BlobStore
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World, make_settings
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path
from tests.s3_support import ACCESS_KEY, REGION, SECRET_KEY, S3Server, free_port

MiB = 1024 * 1024
# An MP4 head, so the viewer plays it from /m/; big enough to be streamed, not served from the small-blob cache.
DATA = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(MiB + 4321)
SIZE = len(DATA)
DIGEST = hashlib.sha256(DATA).hexdigest()
RANGES = [(0, 1), (0, 1000), (MiB - 10, MiB + 10), (SIZE - 1, SIZE)]


def s3_settings(tmp_path: Path, db_url: str, endpoint: str, bucket: str, **extra: object) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        storage_url=f"s3://{bucket}/blobs",
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        s3_addressing_style="path",
        max_upload_bytes=32 * MiB,
        **extra,
    )


@pytest.fixture(params=["stream", "presigned"])
def delivery(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def encryption_key() -> str:
    return ""


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server, delivery: str, encryption_key: str) -> Settings:
    bucket = s3_server.fresh_bucket()
    return s3_settings(
        tmp_path, db_url, s3_server.endpoint, bucket, s3_delivery=delivery, encryption_key=encryption_key
    )


@pytest.fixture(autouse=True)
def _empty_small_blob_cache() -> Iterator[None]:
    small_blobs.clear()
    yield
    small_blobs.clear()


def fetch(client: TestClient, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET as a browser would: a redirect to S3 is followed there, with the same headers (Range included)."""
    response = client.get(url, headers=headers, follow_redirects=False)
    if response.status_code != 302:
        return response
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["location"].startswith(client.app.state.services.settings.s3_endpoint_url)  # type: ignore[attr-defined]  # a FastAPI app
    return httpx.get(response.headers["location"], headers=headers)


def test_member_downloads_honour_range_and_validators(services: Services, owner: Member, delivery: str) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)
    assert isinstance(services.blobs, S3BlobStore)
    assert list(services.blobs.iter_digests()) == [DIGEST]
    url = file["content_url"]
    first = owner.client.get(url, follow_redirects=False)
    assert first.status_code == (302 if delivery == "presigned" else 200)
    whole = fetch(owner.client, url)
    assert (whole.status_code, whole.content) == (200, DATA)
    assert whole.headers["content-type"] == "video/mp4"
    for start, end in RANGES:
        part = fetch(owner.client, url, {"Range": f"bytes={start}-{end - 1}"})
        assert (part.status_code, part.content) == (206, DATA[start:end])
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    # Validators are decided by StudyShelf before any redirect: the ETag is the digest either way.
    head = owner.client.head(url)
    assert (head.status_code, head.headers["etag"], head.headers["content-length"]) == (200, f'"{DIGEST}"', str(SIZE))
    assert owner.client.get(url, headers={"If-None-Match": f'"{DIGEST}"'}).status_code == 304
    assert owner.client.get(url, headers={"If-Match": '"other"'}).status_code == 412
    stale = fetch(owner.client, url, {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (stale.status_code, len(stale.content)) == (200, SIZE)
    refused = owner.client.get(url, headers={"Range": f"bytes={SIZE}-"})
    assert refused.status_code == 416
    download = fetch(owner.client, url + "?download=1")
    assert download.headers["content-disposition"].startswith("attachment")


def test_playback_through_media_urls_is_counted_the_same(world: World, owner: Member, delivery: str) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)
    link = link_path(create_link(owner, file["id"]))
    got = 0
    with TestClient(create_app(services=world.services), base_url="http://testserver") as browser:
        page = browser.get(link, headers={**EMBEDDED, "user-agent": CHROME})
        media = parse_html(page).attr("video[data-media]", "src")
        assert media.startswith("/m/"), page.text
        csp = page.headers["content-security-policy"]
        endpoint = world.services.settings.s3_endpoint_url
        assert (f"media-src {endpoint} 'self' " in csp) == (delivery == "presigned")  # the redirect may be followed
        assert (f"connect-src {endpoint} 'self';" in csp) == (delivery == "presigned")
        for start, end in RANGES:
            headers = {"range": f"bytes={start}-{end - 1}", "user-agent": CHROME, "referer": "http://testserver/"}
            response = fetch(browser, media, headers)
            assert (response.status_code, response.content) == (206, DATA[start:end])
            got += len(response.content)
        assert browser.head(media, headers={"user-agent": CHROME}).status_code == 200  # HEAD: no bytes
        assert browser.get(media, headers={"if-none-match": f'"{DIGEST}"'}).status_code == 304
        got += len(fetch(browser, media, {"user-agent": CHROME}).content)
    drain(world.services)
    now = utcnow()
    window = {"start": now - timedelta(days=1), "end": now + timedelta(days=1)}
    transfers = world.services.warehouse.summary(SummaryQuery(**window, filters={"type": "transfer"})).totals
    assert (transfers.views, transfers.bytes) == (0, got)  # bytes fetched from S3 by redirect count the same
    assert world.services.warehouse.summary(SummaryQuery(**window)).totals.views == 1


# A fixed throwaway key: a random one in the id would differ between xdist workers' collections.
@pytest.mark.parametrize(
    ("delivery", "encryption_key"),
    [("presigned", base64.b64encode(bytes(range(32))).decode())],
    ids=["presigned-encrypted"],
)
def test_an_encrypted_store_is_streamed_even_when_presigned_is_asked(services: Services, owner: Member) -> None:
    assert isinstance(services.blobs, EncryptedBlobStore)
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)
    response = owner.client.get(file["content_url"], headers={"Range": "bytes=10-19"}, follow_redirects=False)
    assert (response.status_code, response.content) == (206, DATA[10:20])  # ciphertext cannot be presigned


@pytest.mark.parametrize("delivery", ["stream"])
def test_garbage_collection_and_backup_copies_list_blobs_through_s3(
    services: Services, owner: Member, tmp_path: Path
) -> None:
    kept = uploaded(owner, owner.root_folder_id, "kept.bin", b"kept bytes")
    gone = uploaded(owner, owner.root_folder_id, "gone.bin", b"bytes to purge")
    store = services.blobs
    assert isinstance(store, S3BlobStore)
    orphan = store.writer()
    orphan.write(b"written, never recorded")
    orphan_digest = orphan.commit().sha256
    backup = LocalBlobStore(tmp_path / "backup")
    assert copy_missing_blobs(store, backup, sorted(store.iter_digests())) == 3
    assert b"".join(backup.read_range(kept["sha256"], 0, 10)) == b"kept bytes"
    assert owner.client.delete(f"/api/v1/files/{gone['id']}", headers=owner.headers()).status_code == 204
    assert purge_trash(services, retention_days=0) == (1, 1)
    memo = collect_orphans(services, "")  # an orphan is deleted on its second sighting only
    assert memo == orphan_digest
    collect_orphans(services, memo)
    assert sorted(store.iter_digests()) == [kept["sha256"]]


@contextmanager
def services_for(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    try:
        yield built
    finally:
        built.warehouse.close()
        built.events.close()
        built.engine.dispose()
        store = built.blobs.inner if isinstance(built.blobs, EncryptedBlobStore) else built.blobs
        if isinstance(store, S3BlobStore):
            store.client.close()  # its keep-alive connections would hold the server's shutdown


# --- S3 failing during an upload: a server of this module's own, stopped and started again on its port. ---


class StoppableS3:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._make = lambda: ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server = self._make()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = self._make()  # moto keeps its buckets in the process: they are all still there
        self.server.start()


@pytest.fixture(scope="module")
def stoppable() -> Iterator[StoppableS3]:
    s3 = StoppableS3()
    yield s3
    s3.stop()


@pytest.fixture
def failing_services(tmp_path: Path, sqlite_template: Path, stoppable: StoppableS3) -> Iterator[Services]:
    db = tmp_path / "studyshelf.sqlite3"
    shutil.copyfile(sqlite_template, db)
    bucket = f"failing-{uuid.uuid4().hex[:12]}"
    client = S3Server(stoppable.endpoint).client()
    client.create_bucket(Bucket=bucket)
    client.close()  # an open keep-alive connection would hold up the server's stop
    with services_for(s3_settings(tmp_path, f"sqlite:///{db}", stoppable.endpoint, bucket)) as services:
        yield services


BOUNDARY = "s3-test-boundary"


def multipart(parts: Iterator[bytes]) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from parts
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def visible(store: S3BlobStore) -> list[str]:
    """Every key outside the temporary area."""
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return [item["Key"] for item in listed.get("Contents", []) if not item["Key"].startswith(store.tmp_prefix)]


def test_s3_failing_mid_upload_is_a_503_and_leaves_nothing_visible(
    failing_services: Services, stoppable: StoppableS3
) -> None:
    services = failing_services
    world = World(services)
    owner = world.member(world.org())
    store = services.blobs
    assert isinstance(store, S3BlobStore)

    def body() -> Iterator[bytes]:
        for _ in range(9):
            yield os.urandom(MiB)
        stoppable.stop()  # S3 goes away between parts
        for _ in range(9):
            yield os.urandom(MiB)

    try:
        response = owner.client.post(
            f"/api/v1/folders/{owner.root_folder_id}/files",
            content=multipart(body()),
            headers={**owner.headers(), "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    finally:
        stoppable.start()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://studyshelf.dev/problems/storage-unavailable"
    assert visible(store) == []
    assert list(store.iter_digests()) == []
    assert owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").json()["items"] == []
    # The aborted upload could not be told to S3 while it was down; recovery removes it once it is stale.
    late = S3BlobStore(store.bucket, store.prefix, client=store.client, stale_after=timedelta(seconds=-10))
    late.recover()
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    # And S3 back, uploads work again.
    assert uploaded(owner, owner.root_folder_id, "after.bin", b"S3 is back")["size"] == 10


def test_a_client_gone_between_parts_aborts_the_multipart_upload(failing_services: Services) -> None:
    services = failing_services
    world = World(services)
    owner = world.member(world.org())
    store = services.blobs
    assert isinstance(store, S3BlobStore)
    created = owner.client.post("/api/v1/auth/tokens", json={"name": "uploader"}, headers=owner.headers())
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    chunks = list(multipart(iter([os.urandom(MiB) for _ in range(10)])))[:-1]  # no closing boundary
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.disconnect"})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/api/v1/folders/{owner.root_folder_id}/files",
        "raw_path": f"/api/v1/folders/{owner.root_folder_id}/files".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(20 * MiB).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        return None

    with TestClient(world.app, base_url="http://testserver") as client:
        assert client.portal is not None
        with pytest.raises(ClientDisconnect):  # what the ASGI server sees and drops
            client.portal.call(world.app, scope, receive, send)
    assert messages == []  # the app read up to the disconnect
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert visible(store) == []
    assert store.recover() == 0


def test_reads_while_s3_is_down_are_503_problems_or_come_from_the_cache(
    failing_services: Services, stoppable: StoppableS3
) -> None:
    world = World(failing_services)
    owner = world.member(world.org())
    small = uploaded(owner, owner.root_folder_id, "small.txt", b"small enough to be cached")
    big = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)
    assert owner.client.get(small["content_url"]).content == b"small enough to be cached"  # read once: cached
    stoppable.stop()
    try:
        cached = owner.client.get(small["content_url"])
        gone = owner.client.get(big["content_url"], headers={"Range": "bytes=0-99"})
        ready = owner.client.get("/readyz")
    finally:
        stoppable.start()
    assert (cached.status_code, cached.content) == (200, b"small enough to be cached")
    assert gone.status_code == 503
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["type"] == "https://studyshelf.dev/problems/storage-unavailable"
    assert (ready.status_code, ready.json()["storage"]) == (503, "error: StorageUnavailable")
    assert owner.client.get(big["content_url"], headers={"Range": "bytes=0-99"}).content == DATA[:100]
