"""Members' downloads: Range, validators, conditional requests, dispositions and types."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Member
from tests.library.support import assert_problem, tiny_png, upload, uploaded

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
SIZE = len(PDF)


@pytest.fixture
def pdf(owner: Member) -> dict[str, Any]:
    return uploaded(
        owner, owner.root_folder_id, "Zellbiologie Übung 1 — Lösung.pdf", PDF, content_type="application/octet-stream"
    )


def test_get_the_whole_file(owner: Member, pdf: dict[str, Any]) -> None:
    response = owner.client.get(pdf["content_url"])
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'
    last_modified = parsedate_to_datetime(response.headers["last-modified"])
    assert abs(last_modified - parsedate_to_datetime(format_datetime(last_modified, usegmt=True))) < timedelta(
        seconds=1
    )
    assert "content-range" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


def test_head_has_the_headers_and_no_body(owner: Member, pdf: dict[str, Any]) -> None:
    get = owner.client.get(pdf["content_url"])
    head = owner.client.head(pdf["content_url"])
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges", "content-disposition"):
        assert head.headers[name] == get.headers[name]
    ranged = owner.client.head(pdf["content_url"], headers={"Range": "bytes=5-14"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 5-14/{SIZE}"
    assert ranged.headers["content-length"] == "10"
    assert ranged.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-9", 0, 10),
        ("bytes=100-199", 100, 200),
        ("bytes=1000-", 1000, SIZE),
        ("bytes=-10", SIZE - 10, SIZE),
        ("bytes=-100000", 0, SIZE),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE),
        ("bytes=10-99999999", 10, SIZE),
        ("BYTES = 3 - 4", 3, 5),
    ],
)
def test_ranges(owner: Member, pdf: dict[str, Any], header: str, start: int, end: int) -> None:
    response = owner.client.get(pdf["content_url"], headers={"Range": header})
    assert response.status_code == 206
    assert response.content == PDF[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["etag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 100}-{SIZE + 200}",
        "bytes=-0",
        "bytes=5-1",
        "bytes=garbage",
        "pages=1-2",
        "bytes=0-1,5-6",
        "bytes=" + ",".join(f"{i}-{i}" for i in range(500)),
        "bytes=" + "9" * 40 + "-",
        "bytes=0-" + "9" * 40,
        "bytes=-" + "9" * 40,
    ],
)
def test_unsatisfiable_ranges_are_416(owner: Member, pdf: dict[str, Any], header: str) -> None:
    response = owner.client.get(pdf["content_url"], headers={"Range": header})
    assert_problem(response, 416, "range-not-satisfiable")
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert owner.client.head(pdf["content_url"], headers={"Range": header}).status_code == 416
    assert owner.client.get(pdf["content_url"]).content == PDF


def test_conditional_requests(owner: Member, pdf: dict[str, Any]) -> None:
    first = owner.client.get(pdf["content_url"])
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    url = pdf["content_url"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f"W/{etag}"},
        {"If-None-Match": f'"x", {etag}'},
        {"If-Modified-Since": last_modified},
    ):
        response = owner.client.get(url, headers=headers)
        assert response.status_code == 304, headers
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert owner.client.head(url, headers=headers).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(last_modified) - timedelta(hours=1), usegmt=True)
    for headers in (
        {"If-None-Match": '"stale"'},
        {"If-Modified-Since": earlier},
        {"If-None-Match": '"stale"', "If-Modified-Since": last_modified},
    ):
        response = owner.client.get(url, headers=headers)
        assert response.status_code == 200, headers
        assert response.content == PDF


def test_if_range(owner: Member, pdf: dict[str, Any]) -> None:
    first = owner.client.get(pdf["content_url"])
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    url = pdf["content_url"]
    matching = owner.client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert (matching.status_code, matching.content) == (206, PDF[:4])
    by_date = owner.client.get(url, headers={"Range": "bytes=0-3", "If-Range": last_modified})
    assert (by_date.status_code, by_date.content) == (206, PDF[:4])
    for stale in ('"someone-elses-etag"', f"W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT"):
        response = owner.client.get(url, headers={"Range": "bytes=0-3", "If-Range": stale})
        assert response.status_code == 200, stale
        assert response.content == PDF
        assert "content-range" not in response.headers


def test_a_new_version_changes_the_validators(owner: Member, pdf: dict[str, Any]) -> None:
    etag = owner.client.get(pdf["content_url"]).headers["etag"]
    new = PDF.replace(b"%%EOF", b"%%EOF2")
    owner.client.post(f"/api/v1/files/{pdf['id']}/versions", files={"file": ("x.pdf", new)}, headers=owner.headers())
    response = owner.client.get(pdf["content_url"], headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.content == new
    stale_range = owner.client.get(pdf["content_url"], headers={"Range": "bytes=0-3", "If-Range": etag})
    assert (stale_range.status_code, stale_range.content) == (200, new)


def test_content_disposition(owner: Member, pdf: dict[str, Any]) -> None:
    name = "Zellbiologie Übung 1 — Lösung.pdf"
    inline = owner.client.get(pdf["content_url"]).headers["content-disposition"]
    assert inline.startswith("inline;")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in inline
    assert 'filename="Zellbiologie _bung 1 _ L_sung.pdf"' in inline
    attachment = owner.client.get(pdf["content_url"], params={"download": "1"}).headers["content-disposition"]
    assert attachment.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in attachment
    # Browsers (and httpx) send '"' in a multipart filename as %22, so the name goes in the `name` field.
    quoted = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("x", b"hi")},
        data={"name": 'say "hi".txt'},
        headers=owner.headers(),
    )
    plain = quoted.json()
    header = owner.client.get(plain["content_url"]).headers["content-disposition"]
    assert header.startswith('inline; filename="say _hi_.txt"')
    assert "filename*=UTF-8''say%20%22hi%22.txt" in header
    ascii_only = uploaded(owner, owner.root_folder_id, "notes.txt", b"n")
    assert owner.client.get(ascii_only["content_url"]).headers["content-disposition"] == 'inline; filename="notes.txt"'


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 32
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    ("name", "data", "mime", "inline"),
    [
        ("clip.mp4", MP4, "video/mp4", True),
        ("talk.mp3", MP3, "audio/mpeg", True),
        ("dot.png", tiny_png(), "image/png", True),
        ("notes.txt", b"plain words", "text/plain", True),
        ("drawing.svg", SVG, "image/svg+xml", False),
        ("page.html", HTML, "text/html", False),
        ("page.txt", HTML, "text/html", False),
    ],
)
def test_types_and_active_content(owner: Member, name: str, data: bytes, mime: str, inline: bool) -> None:
    file = uploaded(owner, owner.root_folder_id, name, data)
    response = owner.client.get(file["content_url"])
    assert response.headers["content-type"].split(";")[0] == mime
    assert response.headers["content-disposition"].startswith("inline" if inline else "attachment")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in csp
    if not inline:
        assert "sandbox" in csp


def test_old_versions_support_ranges_and_validators(owner: Member, pdf: dict[str, Any]) -> None:
    owner.client.post(
        f"/api/v1/files/{pdf['id']}/versions", files={"file": ("x.txt", b"second")}, headers=owner.headers()
    )
    old = owner.client.get(f"/api/v1/files/{pdf['id']}/versions").json()[-1]
    response = owner.client.get(old["content_url"], headers={"Range": "bytes=-6"})
    assert (response.status_code, response.content) == (206, PDF[-6:])
    assert owner.client.get(old["content_url"], headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    assert owner.client.head(old["content_url"]).headers["content-length"] == str(SIZE)


def test_unknown_and_malformed_ids(owner: Member, pdf: dict[str, Any]) -> None:
    assert_problem(owner.client.get(f"/api/v1/files/{uuid.uuid4()}/content"), 404, "not-found")
    assert_problem(owner.client.get(f"/api/v1/files/{pdf['id']}/versions/{uuid.uuid4()}/content"), 404, "not-found")
    assert_problem(owner.client.get("/api/v1/files/12345/content"), 422, "invalid")
    assert_problem(owner.client.get(f"/api/v1/files/{pdf['id']}/versions/%00/content"), 422, "invalid")
    assert owner.client.get(pdf["content_url"]).content == PDF


def test_empty_file(owner: Member) -> None:
    empty = uploaded(owner, owner.root_folder_id, "empty.txt", b"")
    response = owner.client.get(empty["content_url"])
    assert (response.status_code, response.content, response.headers["content-length"]) == (200, b"", "0")
    ranged = owner.client.get(empty["content_url"], headers={"Range": "bytes=0-"})
    assert_problem(ranged, 416, "range-not-satisfiable")
    assert ranged.headers["content-range"] == "bytes */0"


def test_deleted_files_stop_being_served(owner: Member, pdf: dict[str, Any]) -> None:
    assert owner.client.get(pdf["content_url"]).status_code == 200
    owner.client.delete(f"/api/v1/files/{pdf['id']}", headers=owner.headers())
    assert_problem(owner.client.get(pdf["content_url"]), 404, "not-found")
    assert upload(owner, owner.root_folder_id, "after.txt", b"a").status_code == 201
