"""Presigned delivery URLs on the public S3 endpoint when the app reaches S3 by an internal name (moto)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from studyshelf.app import create_app
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.storage.s3 import S3BlobStore
from tests.analytics.conftest import CHROME
from tests.conftest import Member, World, make_settings
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path
from tests.s3_support import S3Server
from tests.storage.test_s3_delivery import DATA, s3_settings


def public_endpoint(internal: str) -> str:
    """The same moto server under another host name, as a browser-facing address would be."""
    return internal.replace("127.0.0.1", "localhost")


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server) -> Settings:
    return s3_settings(
        tmp_path,
        db_url,
        s3_server.endpoint,
        s3_server.fresh_bucket(),
        s3_delivery="presigned",
        s3_public_endpoint_url=public_endpoint(s3_server.endpoint),
    )


def test_member_downloads_redirect_to_the_public_endpoint(services: Services, owner: Member) -> None:
    internal = services.settings.s3_endpoint_url
    public = services.settings.s3_public_endpoint_url
    assert internal
    assert public
    assert public != internal
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)  # stored through the internal endpoint
    store = services.blobs
    assert isinstance(store, S3BlobStore)
    assert store.client.meta.endpoint_url == internal
    response = owner.client.get(file["content_url"], headers={"Range": "bytes=10-19"}, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(public + "/"), location
    fetched = httpx.get(location, headers={"Range": "bytes=10-19"})  # what a browser does with it
    assert (fetched.status_code, fetched.content) == (206, DATA[10:20])


def test_the_viewer_allows_and_uses_the_public_origin(world: World, owner: Member) -> None:
    public = world.services.settings.s3_public_endpoint_url
    assert public
    internal = world.services.settings.s3_endpoint_url
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", DATA)
    with TestClient(create_app(services=world.services), base_url="http://testserver") as browser:
        page = browser.get(link_path(create_link(owner, file["id"])), headers={**EMBEDDED, "user-agent": CHROME})
        csp = page.headers["content-security-policy"]
        assert f"media-src {public} 'self' " in csp
        assert f"{internal} " not in csp  # the internal name is nothing a browser could reach
        media = parse_html(page).attr("video[data-media]", "src")
        redirect = browser.get(media, headers={"user-agent": CHROME}, follow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith(public + "/")
    assert httpx.get(redirect.headers["location"]).content == DATA


@pytest.mark.parametrize("value", ["minio.internal:9000", "ftp://files.example.edu", "https://"])
def test_a_public_endpoint_that_is_no_url_is_refused_naming_the_setting(
    tmp_path: Path, db_url: str, value: str
) -> None:
    with pytest.raises(ValidationError, match="STUDYSHELF_S3_PUBLIC_ENDPOINT_URL"):
        make_settings(tmp_path, db_url, s3_public_endpoint_url=value)
