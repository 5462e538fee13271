"""The processed demo video plays as HLS in Chromium through the vendored hls.js, and seeks by segment.

A server of its own: `studyshelf media process` turns the demo video into HLS before `serve` starts (the shared
browser server keeps processing off, so test_embed.py's MP4 range tests see the original).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    Server,
    running_server,
    script_failures,
    sign_in,
    watch_script_errors,
)

pytestmark = pytest.mark.browser
VIDEO = "Mitosis — lecture.mp4"
SEGMENT = re.compile(r"/360p/seg-(\d{5})\.ts$")


@pytest.fixture(scope="module")
def hls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("hls-data")
    with running_server(data, {"STUDYSHELF_MEDIA_PROCESSING": "true"}, before_serve=[["media", "process"]]) as started:
        yield started


@pytest.fixture(scope="module")
def video_link(hls_server: Server) -> str:
    """A direct link (it opens on its own, no LMS frame needed) to the processed demo video."""
    with httpx.Client(base_url=hls_server.url, timeout=15) as api:
        login = api.post("/api/v1/auth/login", json={"email": hls_server.email, "password": hls_server.password})
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        file_id = _find(api, VIDEO)
        status = api.get(f"/api/v1/files/{file_id}/processing").json()
        assert status["state"] == "done", status
        body = {"target_type": "file", "target_id": file_id, "allowed_origins": [], "mode": "direct"}
        created = api.post("/api/v1/links", json=body, headers=csrf)
        assert created.status_code == 201, created.text
        return f"{hls_server.url}/v/{created.json()['id']}"


def _find(api: httpx.Client, name: str) -> str:
    for org in api.get("/api/v1/me").json()["organizations"]:
        pending = [org["root_folder_id"]]
        while pending:
            items = api.get(f"/api/v1/folders/{pending.pop()}/children", params={"limit": 500}).json()["items"]
            for item in items:
                if item["kind"] == "folder":
                    pending.append(item["id"])
                elif item["name"] == name:
                    return str(item["id"])
    raise AssertionError(f"no demo file {name!r}")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


def test_hls_js_plays_and_seeks_to_the_right_segment(page: Any, video_link: str, artifacts: Path) -> None:
    errors = watch_script_errors(page)
    segments: list[int] = []
    page.on(
        "response",
        lambda r: segments.append(int(m.group(1))) if (m := SEGMENT.search(urlsplit(r.url).path)) else None,
    )
    # A slow line (~40 kB/s; a segment is ~125 kB): hls.js has not buffered the seek target when we seek, so
    # the seek must make it ask for the segment that holds the new position (unthrottled it has them all).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 20, "downloadThroughput": 40_000, "uploadThroughput": 40_000}
    cdp.send("Network.emulateNetworkConditions", throttle)
    page.goto(video_link)
    video = page.locator("[data-viewer] video")
    assert video.get_attribute("poster", timeout=5000).startswith("/m/~/")
    page.wait_for_function("() => document.querySelector('video').dataset.player === 'hls.js'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=30_000)
    assert segments[0] == 0, segments
    page.wait_for_function("() => document.querySelector('[data-viewer]').dataset.rendition === '360p'")
    assert 2 not in segments, segments

    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.currentTime = 8.2; }")
    page.evaluate("() => document.querySelector('video').play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 8.5", timeout=30_000)
    # 4 s segments: 8.2 s lies in the third (seg-00002); hls.js fetched it for the seek.
    assert 2 in segments, segments
    page.evaluate("() => document.querySelector('video').pause()")
    page.screenshot(path=str(artifacts / "hls-viewer-desktop.png"))
    assert not script_failures(errors), errors


NO_MEDIA_SOURCE = "delete window.MediaSource; delete window.ManagedMediaSource;"
NO_NATIVE_HLS = """
const canPlayType = HTMLMediaElement.prototype.canPlayType;
HTMLMediaElement.prototype.canPlayType = function (type) {
  return /mpegurl/i.test(type) ? "" : canPlayType.call(this, type);
};
"""


def test_native_hls_where_there_is_no_media_source(browser: Any, video_link: str) -> None:
    """iOS Safari's case: no MediaSource for hls.js, HLS played by the browser itself. Debian's Chromium plays
    HLS natively too (canPlayType says "maybe"), so the native path runs here for real."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.add_init_script(NO_MEDIA_SOURCE)
    page.goto(video_link)
    native = page.evaluate("() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    expected = "native-hls" if native else "mp4"
    page.wait_for_function(f"() => document.querySelector('video').dataset.player === '{expected}'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=20_000)
    if native:
        assert page.evaluate("() => document.querySelector('video').currentSrc").endswith("/master.m3u8")
        page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.currentTime = 6; }")
        page.evaluate("() => document.querySelector('video').play()")
        page.wait_for_function("() => document.querySelector('video').currentTime > 6.3", timeout=20_000)
    context.close()


def test_without_hls_support_the_mp4_plays(browser: Any, video_link: str, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    # A browser with neither MediaSource nor native HLS (old embedded web views): the original MP4.
    page.add_init_script(NO_MEDIA_SOURCE + NO_NATIVE_HLS)
    page.goto(video_link)
    page.wait_for_function("() => document.querySelector('video').dataset.player === 'mp4'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=20_000)
    src = page.evaluate("() => document.querySelector('video').currentSrc")
    assert "/m/~/" not in src
    assert "/m/" in src
    page.screenshot(path=str(artifacts / "hls-viewer-phone-mp4.png"))
    context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_library_shows_thumbnails_and_the_file_page_its_processing(
    browser: Any, hls_server: Server, video_link: str, artifacts: Path, viewport: dict[str, int]
) -> None:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors = watch_script_errors(page)
    with httpx.Client(base_url=hls_server.url, timeout=15) as api:
        api.post("/api/v1/auth/login", json={"email": hls_server.email, "password": hls_server.password})
        folder_id = api.get(f"/api/v1/files/{_find(api, VIDEO)}").json()["folder_id"]
    sign_in(page, hls_server)
    page.goto(f"{hls_server.url}/library/{folder_id}")
    row = page.locator("tr", has_text=VIDEO)
    thumb = row.locator("img.row-thumb")
    thumb.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle(), timeout=10_000)
    name = "desktop" if viewport == DESKTOP else "phone"
    page.screenshot(path=str(artifacts / f"hls-library-{name}.png"), full_page=True)
    row.get_by_role("link", name=VIDEO).click()
    panel = page.locator("#processing")
    panel.wait_for(timeout=10_000)
    assert "Streams in 360p" in panel.inner_text()
    poster = page.locator("video.player").get_attribute("poster")
    assert poster is not None
    assert poster.endswith("/previews/poster.jpg")
    page.screenshot(path=str(artifacts / f"hls-file-page-{name}.png"), full_page=True)
    assert not script_failures(errors), errors
    context.close()


def _playback(api: httpx.Client, file_id: str, org_id: str) -> dict[str, Any] | None:
    answer = api.get(f"/api/v1/analytics/files/{file_id}", params={"org_id": org_id, "days": "7"})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] | None = answer.json()["playback"]
    return found


def test_playing_then_leaving_the_page_stores_its_playback(
    browser: Any, hls_server: Server, video_link: str, artifacts: Path
) -> None:
    """Issue 19: the viewer reports what it played when the learner leaves; the file's page and JSON show it."""
    # The module's server is shared: other tests' views of the video count too, so this one reads the change.
    with httpx.Client(base_url=hls_server.url, timeout=15) as api:
        login = api.post("/api/v1/auth/login", json={"email": hls_server.email, "password": hls_server.password})
        assert login.status_code == 200, login.text
        file_id = _find(api, VIDEO)
        org_id = str(api.get(f"/api/v1/files/{file_id}").json()["org_id"])
        before = _playback(api, file_id, org_id) or {"views": 0, "watch_ms": 0}
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)
    page.goto(video_link)
    page.wait_for_function("() => document.querySelector('video').dataset.player === 'hls.js'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=30_000)
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('video').currentTime > 3", timeout=30_000)
    assert not script_failures(errors), errors
    page.goto("about:blank")  # leaving the page (pagehide) sends the report
    context.close()

    with httpx.Client(base_url=hls_server.url, timeout=15) as api:
        login = api.post("/api/v1/auth/login", json={"email": hls_server.email, "password": hls_server.password})
        assert login.status_code == 200, login.text
        deadline = time.monotonic() + 30  # until the server's buffer has drained into its warehouse
        while (found := _playback(api, file_id, org_id)) is None or found["views"] <= before["views"]:
            if time.monotonic() > deadline:
                break
            api.get("/healthz")  # a round trip between reads, not a sleep
    assert found is not None
    assert found["views"] == before["views"] + 1, (before, found)
    assert found["watch_ms"] - before["watch_ms"] >= 2500, (before, found)
    assert "360p" in [r["key"] for r in found["renditions"]], found
    assert sum(r["watch_ms"] for r in found["renditions"]) == found["watch_ms"]
    assert "en" in [c["key"] for c in found["captions"]], found  # the demo video's default captions are shown
    assert found["median_reached_pct"] is not None

    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        context = browser.new_context(viewport=viewport)
        shown = context.new_page()
        sign_in(shown, hls_server)
        shown.goto(f"{hls_server.url}/analytics/files/{file_id}?days=7")
        section = shown.locator("[data-playback]")
        section.wait_for()
        assert re.fullmatch(r"\d+ s", shown.locator("[data-figure='watch-time'] dd").inner_text())
        assert shown.locator("[data-table='renditions']").get_by_text("360p").count() == 1
        shown.screenshot(path=str(artifacts / f"playback-analytics-{name}.png"), full_page=True)
        context.close()


CUE = re.compile(r"(\d+):(\d+):(\d+)\.(\d+) --> (\d+):(\d+):(\d+)\.(\d+)\s*\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)")


def _thumbnail_cues(index: str) -> list[tuple[float, float, int, int]]:
    """(start, end, x, y) of each cue of a thumbnail WebVTT index."""
    cues = []
    for m in CUE.finditer(index):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in m.groups()[:8])
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        cues.append((start, end, int(m.group(10)), int(m.group(11))))
    return cues


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_scrub_bar_previews_the_frame_of_the_hovered_time(
    browser: Any, video_link: str, artifacts: Path, viewport: dict[str, int]
) -> None:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    errors = watch_script_errors(page)
    page.goto(video_link)
    bar = page.get_by_role("slider", name="Seek with frame previews")
    bar.wait_for(state="visible", timeout=20_000)
    index_url = page.get_attribute("[data-seek-previews]", "data-seek-previews")
    cues = _thumbnail_cues(page.evaluate("(url) => fetch(url).then((r) => r.text())", index_url))
    assert len(cues) > 1, cues
    tile = page.locator("[data-seek-tile]")

    box = bar.bounding_box()
    assert box is not None
    for share in (0.15, 0.7):
        page.mouse.move(box["x"] + box["width"] * share, box["y"] + box["height"] / 2)
        tile.wait_for(state="visible")
        at = float(tile.get_attribute("data-time") or "nan")
        start, _end, x, y = next(c for c in cues if c[0] <= at < c[1]) if at < cues[-1][1] else cues[-1]
        assert tile.evaluate("(el) => el.style.backgroundPosition") == f"{-x}px {-y}px", (share, at, start)
        assert "sprite.jpg" in tile.evaluate("(el) => el.style.backgroundImage")
    later = float(tile.get_attribute("data-time") or "nan")
    assert later > 0
    name = "desktop" if viewport == DESKTOP else "phone"
    page.screenshot(path=str(artifacts / f"seek-preview-{name}.png"))

    # Keyboard: the arrow keys move the preview, Enter (or the arrows' change) seeks there.
    page.mouse.move(0, 0)
    bar.focus()
    page.keyboard.press("End")
    tile.wait_for(state="visible")
    end_at = float(tile.get_attribute("data-time") or "nan")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => Math.abs(document.querySelector('video').currentTime - {end_at}) < 1.01")
    assert bar.get_attribute("aria-valuetext")
    assert not script_failures(errors), errors
    context.close()


def test_the_viewer_with_seek_previews_is_axe_clean(browser: Any, video_link: str) -> None:
    from tests.browser.test_accessibility import BROWSER_UA, _violations

    # axe goes in as a script tag, which the viewer's CSP (script-src 'self') would refuse.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True, user_agent=BROWSER_UA)
    page = context.new_page()
    page.goto(video_link)
    bar = page.get_by_role("slider", name="Seek with frame previews")
    bar.wait_for(state="visible", timeout=20_000)
    bar.focus()
    page.keyboard.press("ArrowRight")
    assert _violations(page) == []
    context.close()
