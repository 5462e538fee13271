"""GET/HEAD /m/…: bytes by signed URL alone — ranges, validators, caching, refusals that change nothing."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.middleware import Middleware
from starlette.requests import Request

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock
from studyshelf.delivery.media import MediaUrls
from studyshelf.library.models import File, FileVersion
from studyshelf.services import Services
from studyshelf.signing import MediaClaims
from tests.conftest import Member
from tests.library.support import assert_problem, stored_state, uploaded

DATA = bytes(range(256)) * 40 + b"tail"
SIZE = len(DATA)
NAME = "Vorlesung 3 — Zellteilung.bin"
LINK = "AbCdEfGhIjKlMnOpQrSt_-"


@pytest.fixture
def claims(services: Services, owner: Member) -> MediaClaims:
    """Claims for a real uploaded version (as the viewer would sign them)."""
    body = uploaded(owner, owner.root_folder_id, NAME, DATA)
    with services.read_sessions() as db:
        file = db.get(File, uuid.UUID(body["id"]))
        assert file is not None
        version = db.scalars(select(FileVersion).where(FileVersion.id == file.current_version_id)).one()
        return MediaClaims(
            expires=int(time.time()) + services.settings.media_url_ttl_seconds,
            link_id=LINK,
            version_id=str(version.id),
            sha256=version.blob_sha256,
            size=version.size,
            modified=int(version.created_at.timestamp()),
            content_type=version.content_type,
            download=False,
            filename=file.name,
        )


Refusals = list[tuple[str, str | None]]


def with_recorder(app: FastAPI, refusals: Refusals) -> FastAPI:
    """The app with a refusal recorder wired into its MediaUrls middleware (as the lead's code will)."""

    def record(_request: Request, reason: str, link_id: str | None) -> None:
        refusals.append((reason, link_id))

    app.user_middleware = [
        Middleware(MediaUrls, on_refused=record) if cast(object, m.cls) is MediaUrls else m for m in app.user_middleware
    ]
    return app


@pytest.fixture
def refusals() -> Refusals:
    return []


@pytest.fixture
def anonymous(services: Services, refusals: Refusals) -> Iterator[TestClient]:
    """A client with no cookie and no token: media URLs must work for it."""
    with TestClient(with_recorder(create_app(services=services), refusals), base_url="http://testserver") as client:
        yield client


def test_get_the_whole_file_without_a_cookie(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    url = services.signer.sign(claims)
    assert not anonymous.cookies
    response = anonymous.get(url)
    assert response.status_code == 200, response.text
    assert response.content == DATA
    assert response.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == claims.content_type
    assert response.headers["content-disposition"].startswith("inline;")
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in response.headers["content-disposition"]
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-request-id"]
    assert "set-cookie" not in response.headers


def test_cache_control_is_public_within_the_signature_life(
    services: Services, anonymous: TestClient, claims: MediaClaims
) -> None:
    for seconds_left in (600, 200, 5):
        url = services.signer.sign(claims._replace(expires=int(time.time()) + seconds_left))
        cache_control = anonymous.get(url).headers["cache-control"]
        directives = dict(d.strip().partition("=")[::2] for d in cache_control.split(","))
        assert "public" in directives
        assert 0 <= int(directives["max-age"]) <= seconds_left


def test_ranges_and_head(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    url = services.signer.sign(claims)
    probe = anonymous.get(url, headers={"Range": "bytes=0-1"})  # what Safari asks first
    assert probe.status_code == 206
    assert probe.content == DATA[:2]
    assert probe.headers["content-range"] == f"bytes 0-1/{SIZE}"
    tail = anonymous.get(url, headers={"Range": "bytes=-4"})
    assert (tail.status_code, tail.content) == (206, b"tail")
    head = anonymous.head(url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(SIZE)
    ranged_head = anonymous.head(url, headers={"Range": "bytes=10-19"})
    assert (ranged_head.status_code, ranged_head.headers["content-length"]) == (206, "10")


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=" + ",".join(f"{i}-{i}" for i in range(5000)), f"bytes={SIZE}-", "bytes=x"]
)
def test_bad_ranges_are_416(services: Services, anonymous: TestClient, claims: MediaClaims, header: str) -> None:
    response = anonymous.get(services.signer.sign(claims), headers={"Range": header})
    assert_problem(response, 416, "range-not-satisfiable")
    assert response.headers["content-range"] == f"bytes */{SIZE}"


def test_etag_and_if_range(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    url = services.signer.sign(claims)
    etag = anonymous.get(url).headers["etag"]
    not_modified = anonymous.get(url, headers={"If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    # Another valid signature for the same bytes has the same validator (what a CDN needs).
    other = services.signer.sign(claims._replace(expires=claims.expires - 1))
    assert anonymous.get(other, headers={"If-None-Match": etag}).status_code == 304
    stale = anonymous.get(url, headers={"Range": "bytes=0-3", "If-Range": '"other"'})
    assert (stale.status_code, stale.content) == (200, DATA)


def test_download_flag_makes_an_attachment(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    response = anonymous.get(services.signer.sign(claims._replace(download=True)))
    assert response.headers["content-disposition"].startswith("attachment;")


def test_expired_url_is_refused(
    services: Services, anonymous: TestClient, claims: MediaClaims, refusals: Refusals
) -> None:
    url = services.signer.sign(claims._replace(expires=int(time.time()) - 120))
    body = assert_problem(anonymous.get(url), 403, "media-refused")
    assert body["reason"] == "expired"
    assert refusals == [("expired", LINK)]


def test_tampering_is_refused_and_changes_nothing(
    services: Services, anonymous: TestClient, claims: MediaClaims, refusals: Refusals
) -> None:
    before = stored_state(services)
    url = services.signer.sign(claims)
    tampered = [
        url.replace("/0/", "/1/", 1),  # download flag
        url.replace(f"/{claims.size}/", f"/{claims.size + 1}/", 1),
        url[:-1] + ("x" if url[-1] != "x" else "y"),  # file name
        url.replace(f"/{claims.expires}/", f"/{claims.expires + 60}/", 1),
        url.replace(f"/{LINK}/", "/AAAAAAAAAAAAAAAAAAAAAA/", 1),
    ]
    garbage = ["/m/", "/m/k1/..%2F..%2Fetc%2Fpasswd", "/m/" + "x/" * 2000, "/m/%00%ff", "/m/k9" + url[5:]]
    for bad in tampered + garbage:
        response = anonymous.get(bad)
        body = assert_problem(response, 403, "media-refused")
        assert body["reason"] == "bad-signature", bad
        assert response.headers["cache-control"] == "no-store"
        assert anonymous.head(bad).status_code == 403
    assert stored_state(services) == before
    # A flood from one address is recorded once a second at most.
    assert len(refusals) == 1
    assert refusals[0] == ("bad-signature", LINK)


def test_only_get_and_head(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    url = services.signer.sign(claims)
    for method in ("POST", "PUT", "DELETE"):
        response = anonymous.request(method, url)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == "GET, HEAD"


def test_cookies_are_not_read(services: Services, owner: Member, claims: MediaClaims) -> None:
    """A signed-in member's cookie neither helps a bad URL nor is needed for a good one."""
    url = services.signer.sign(claims)
    assert owner.client.get(url).content == DATA
    assert owner.client.get(url.replace("/0/", "/1/", 1)).status_code == 403


def test_not_in_the_openapi_schema(anonymous: TestClient) -> None:
    paths: dict[str, Any] = anonymous.get("/api/openapi.json").json()["paths"]
    assert not any(p.startswith("/m/") for p in paths)


def test_repeated_requests_answer_the_same(services: Services, anonymous: TestClient, claims: MediaClaims) -> None:
    """The second request of a URL takes the remembered path; it must answer exactly like the first."""
    url = services.signer.sign(claims)
    first, second, third = anonymous.get(url), anonymous.get(url), anonymous.get(url)
    assert third.content == second.content == first.content == DATA
    varying = {"x-request-id", "cache-control", "date", "server"}
    for later in (second, third):
        assert {k: v for k, v in first.headers.items() if k not in varying} == {
            k: v for k, v in later.headers.items() if k not in varying
        }
        assert later.headers["cache-control"].startswith("public, max-age=")
    head = anonymous.head(url)
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(SIZE))
    assert anonymous.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    assert anonymous.get(url, headers={"Range": "bytes=1-2"}).content == DATA[1:3]


def test_a_remembered_url_still_expires(services: Services, claims: MediaClaims, refusals: Refusals) -> None:
    clock = MovableClock()
    moved = replace(services, clock=clock)
    with TestClient(with_recorder(create_app(services=moved), refusals), base_url="http://testserver") as anonymous:
        url = moved.signer.sign(claims._replace(expires=int(clock.time()) + 30))
        assert anonymous.get(url).status_code == 200
        clock.advance(30 + 61)
        body = assert_problem(anonymous.get(url), 403, "media-refused")
    assert body["reason"] == "expired"
    assert refusals == [("expired", LINK)]
