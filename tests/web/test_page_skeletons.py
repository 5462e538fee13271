"""A viewer page made from its skeleton (the page rendered once with slots, its signed URLs and tokens joined
in per visit) is byte for byte the page `render` makes, for every kind of material, in every language."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from studyshelf.delivery import viewing
from studyshelf.web.render import PageSkeletons, render


def _request(language: str) -> Request:
    headers = [(b"accept-language", language.encode())]
    return Request({"type": "http", "method": "GET", "path": "/v/x", "query_string": b"", "headers": headers})


def _context(kind: str, **overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "title": 'Lecture <1> & "notes".pdf',
        "kind": kind,
        "content_type": {"pdf": "application/pdf", "video": "video/mp4", "audio": "audio/mpeg"}.get(kind, "text/csv"),
        "size": 123_456,
        "media_url": "/m/AbC.def?e=1&s=x<y>",
        "hls_url": None,
        "poster_url": None,
        "previews_url": None,
        "audio_url": None,
        "image_url": None,
        "download_url": None,
        "captions": [],
        "cross_origin_media": False,
        "refresh_after": 810,
        "renew_url": "/v/link-1/media",
        "viewer_token": "1.eyJ4Ijo.sig'\"",
        "beacon_token": "2.beacon&token",
        "file_id": "0190-file",
        "crumbs": [],
        "placement": None,
    }
    return {**context, **overrides}


CASES = {
    "pdf": _context("pdf"),
    "pdf with download": _context("pdf", download_url="/m/dl?x=1&y=2"),
    "video with renditions and captions": _context(
        "video",
        hls_url="/m/set/master.m3u8",
        poster_url="/m/set/poster.jpg",
        previews_url="/m/set/thumbs.vtt",
        cross_origin_media=True,
        captions=[
            {"id": "c1", "language": "en", "label": "English", "default": True, "url": "/m/c1?a=1&b=2"},
            {"id": "c2", "language": "de", "label": "Deutsch <DE>", "default": False, "url": "/m/c2"},
        ],
    ),
    "plain video": _context("video"),
    "audio": _context("audio", audio_url="/m/set/audio.m4a"),
    "image": _context("image", image_url="/m/set/web.jpg"),
    "other": _context("other"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("language", ["en", "de", "es"])
def test_a_page_from_its_skeleton_is_the_rendered_page(case: str, language: str) -> None:
    context = CASES[case]
    expected = render(_request(language), "delivery/viewer.html", context)
    made = viewing._from_skeleton(_request(language), context, {})
    assert made.body == expected.body
    assert made.headers["content-language"] == language
    again = viewing._from_skeleton(_request(language), context, {})  # the second visit: from the skeleton
    assert again.body == expected.body


def test_each_visit_gets_its_own_tokens_and_urls_from_one_skeleton() -> None:
    first = viewing._from_skeleton(_request("en"), _context("pdf"), {})
    second = viewing._from_skeleton(
        _request("en"), _context("pdf", viewer_token="other-token", media_url="/m/other"), {}
    )
    assert b"other-token" in second.body
    assert b"/m/other" in second.body
    assert b"other-token" not in first.body
    assert (
        first.body.replace(b"1.eyJ4Ijo.sig&#39;&#34;", b"other-token").replace(
            b"/m/AbC.def?e=1&amp;s=x&lt;y&gt;", b"/m/other"
        )
        == second.body
    )


def test_a_full_cache_starts_again() -> None:
    skeletons = PageSkeletons(max_entries=2)
    for n in range(5):
        page = skeletons.render(
            _request("en"), "delivery/viewer.html", ("key", n), _context("other", title=f"f{n}"), []
        )
        assert f"f{n}".encode() in page.body
    assert len(skeletons._pages) <= 2
