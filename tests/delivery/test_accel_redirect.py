"""STUDYSHELF_ACCEL_REDIRECT: the app decides, nginx sends the bytes (the X-Accel-Redirect answer, no body).

Only the app's side is here; tests/deploy/test_nginx.py runs real nginx in front of it.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import utcnow
from studyshelf.delivery.streaming import SMALL_BLOB_MAX
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World, make_settings
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path, visitor

PREFIX = "/_protected/"
BIG = bytes(range(256)) * (SMALL_BLOB_MAX // 256 + 1)  # just over the size the app keeps in memory
DIGEST = hashlib.sha256(BIG).hexdigest()
BLOB_PATH = f"{DIGEST[:2]}/{DIGEST[2:4]}/{DIGEST}"


def _totals(world: World, **query: Any) -> Any:
    drain(world.services)
    now = utcnow()
    window = SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1), **query)
    return world.services.warehouse.summary(window).totals


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, accel_redirect=PREFIX)


@pytest.fixture
def big(owner: Member) -> dict[str, Any]:
    return uploaded(owner, owner.root_folder_id, "Vorlesung 4.bin", BIG)


def test_a_member_download_names_the_blob_and_sends_no_body(
    owner: Member, big: dict[str, Any], settings: Settings
) -> None:
    response = owner.client.get(big["content_url"])
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-accel-redirect"] == PREFIX + BLOB_PATH
    assert (settings.data_dir / "blobs" / BLOB_PATH).read_bytes() == BIG  # the file nginx will send
    assert response.headers["content-length"] == "0"
    assert response.headers["etag"] == f'"{DIGEST}"'
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["cache-control"] == "private, no-cache"
    assert response.headers["last-modified"]
    assert "accept-ranges" not in response.headers  # nginx adds it for the file it sends


def test_nginx_answers_the_range(owner: Member, big: dict[str, Any]) -> None:
    response = owner.client.get(big["content_url"], headers={"Range": "bytes=0-1"})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["x-accel-redirect"] == PREFIX + BLOB_PATH
    assert "content-range" not in response.headers


def test_what_the_app_decides_it_still_answers(owner: Member, big: dict[str, Any]) -> None:
    etag = f'"{DIGEST}"'
    not_modified = owner.client.get(big["content_url"], headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert "x-accel-redirect" not in not_modified.headers
    failed = owner.client.get(big["content_url"], headers={"If-Match": '"other"'})
    assert failed.status_code == 412
    unsatisfiable = owner.client.get(big["content_url"], headers={"Range": f"bytes={len(BIG)}-"})
    assert unsatisfiable.status_code == 416
    assert "x-accel-redirect" not in unsatisfiable.headers
    head = owner.client.head(big["content_url"])
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(BIG)))
    assert "x-accel-redirect" not in head.headers


def test_preconditions_nginx_would_misjudge_are_streamed(owner: Member, big: dict[str, Any]) -> None:
    for header in ({"If-Match": f'"{DIGEST}"'}, {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}):
        response = owner.client.get(big["content_url"], headers=header)
        assert response.status_code == 200
        assert response.content == BIG
        assert "x-accel-redirect" not in response.headers


def test_small_blobs_are_sent_from_memory(owner: Member) -> None:
    small = uploaded(owner, owner.root_folder_id, "note.txt", b"small enough", content_type="text/plain")
    response = owner.client.get(small["content_url"])
    assert response.content == b"small enough"
    assert "x-accel-redirect" not in response.headers


def test_media_urls_offload_and_count_the_download(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.bin", BIG)
    page = visitor(owner).get(
        link_path(create_link(owner, file["id"], allow_download=True)), headers={**EMBEDDED, "user-agent": CHROME}
    )
    url = parse_html(page).attr('a[href^="/m/"][download]', "href")
    response = visitor(owner).get(url, headers={"user-agent": CHROME})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["x-accel-redirect"] == PREFIX + BLOB_PATH
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    totals = _totals(world)
    assert (totals.views, totals.downloads, totals.bytes) == (1, 1, len(BIG))


def test_offloaded_playback_counts_the_ranges_nginx_will_send(world: World, owner: Member) -> None:
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    video = head + BIG[len(head) :]
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", video)
    with TestClient(create_app(services=world.services), base_url="http://testserver") as browser:
        page = browser.get(link_path(create_link(owner, file["id"])), headers={**EMBEDDED, "user-agent": CHROME})
        media = parse_html(page).attr("video[data-media]", "src")
        for value in ("bytes=0-1", "bytes=1000-4999", None):
            headers = {"user-agent": CHROME, **({"range": value} if value else {})}
            response = browser.get(media, headers=headers)
            assert (response.status_code, response.content) == (200, b"")
            assert response.headers["x-accel-redirect"].startswith(PREFIX)
    # Leaving the block shut the app down, which reported the tally.
    transfers = _totals(world, filters={"type": "transfer"})
    assert transfers.bytes == 2 + 4000 + len(video)


class TestEncryptedStore:
    @pytest.fixture
    def settings(self, tmp_path: Path, db_url: str) -> Settings:
        key = base64.b64encode(bytes(range(32))).decode()
        return make_settings(tmp_path, db_url, accel_redirect=PREFIX, encryption_key=key)

    def test_ciphertext_on_disk_is_streamed(self, owner: Member, big: dict[str, Any]) -> None:
        response = owner.client.get(big["content_url"])
        assert response.status_code == 200
        assert response.content == BIG
        assert "x-accel-redirect" not in response.headers


class TestOff:
    @pytest.fixture
    def settings(self, tmp_path: Path, db_url: str) -> Settings:
        return make_settings(tmp_path, db_url)

    def test_the_app_streams(self, owner: Member, big: dict[str, Any]) -> None:
        response = owner.client.get(big["content_url"])
        assert response.content == BIG
        assert "x-accel-redirect" not in response.headers


@pytest.mark.parametrize("prefix", ["_protected/", "/_protected", "/a b/", "/../"])
def test_a_prefix_that_is_not_a_location_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="STUDYSHELF_ACCEL_REDIRECT"):
        make_settings(tmp_path, "sqlite://", accel_redirect=prefix)
