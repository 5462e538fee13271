"""Captions in real headless Chromium: the default track shows, a cue becomes active as the video plays
from a seek, the transcript highlights it, a click (or Enter on a line) seeks, and the transcript follows the
language chosen. Screenshots of the viewer with its transcript at 1280 and 375 px."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors

pytestmark = pytest.mark.browser

ASSETS = Path(__file__).resolve().parents[2] / "src/studyshelf/demo/assets"
DEMO_VIDEO = ASSETS / "mitosis-lecture.mp4"
DEMO_AUDIO = ASSETS / "pronunciation-guide.mp3"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
ENGLISH = b"""WEBVTT

00:00:00.000 --> 00:00:02.500
Cells divide in four phases; this lecture walks through each of them.

00:00:02.500 --> 00:00:05.000
Prophase: the chromosomes condense and the spindle begins to form.

00:00:05.000 --> 00:00:07.500
Metaphase: the chromosomes line up along the middle of the cell.

00:00:07.500 --> 00:00:10.000
Anaphase and telophase: the copies separate and two nuclei form.
"""
GERMAN = b"""1
00:00:00,000 --> 00:00:02,500
Zellen teilen sich in vier Phasen.

2
00:00:02,500 --> 00:00:05,000
Prophase: Die Chromosomen kondensieren.

3
00:00:05,000 --> 00:00:07,500
Metaphase: Die Chromosomen ordnen sich an.

4
00:00:07,500 --> 00:00:10,000
Anaphase und Telophase: zwei Kerne entstehen.
"""

ACTIVE = "() => [...document.querySelectorAll('.transcript-cue.is-active')].map(b => b.textContent)"
TIME = "() => document.querySelector('video').currentTime"


@dataclass(frozen=True)
class Captioned:
    file_id: str
    link_url: str


def _captioned(server: Server, media: Path, tracks: list[tuple[str, bytes, dict[str, str]]]) -> Captioned:
    """`media` uploaded anew with these caption files, and a direct share link to it."""
    with httpx.Client(base_url=server.url, timeout=30) as session:
        login = session.post("/api/v1/auth/login", json={"email": server.email, "password": server.password})
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        org = session.get("/api/v1/me").json()["organizations"][0]
        upload = session.post(
            f"/api/v1/folders/{org['root_folder_id']}/files",
            files={"file": (f"captioned-{uuid.uuid4().hex[:6]}{media.suffix}", media.read_bytes())},
            headers=csrf,
        )
        assert upload.status_code == 201, upload.text
        file_id = upload.json()["id"]
        for name, data, fields in tracks:
            added = session.post(
                f"/api/v1/files/{file_id}/captions", files={"file": (name, data)}, data=fields, headers=csrf
            )
            assert added.status_code == 201, added.text
        body = {"target_type": "file", "target_id": file_id, "mode": "direct", "org_id": org["id"]}
        link = session.post("/api/v1/links", json=body, headers=csrf)
        assert link.status_code == 201, link.text
        return Captioned(file_id, str(link.json()["url"]))


@pytest.fixture(scope="module")
def captioned(server: Server) -> Captioned:
    """A lecture with English (default) and German captions."""
    return _captioned(
        server,
        DEMO_VIDEO,
        [("en.vtt", ENGLISH, {"language": "en", "default": "true"}), ("de.srt", GERMAN, {"language": "de"})],
    )


def _open(browser: Any, url: str, viewport: dict[str, int], media: str = "video") -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=viewport, user_agent=BROWSER_UA)
    page = context.new_page()
    errors = watch_script_errors(page)
    page.goto(url)
    page.locator("[data-transcript]:not([hidden]) .transcript-cue").first.wait_for(timeout=15_000)
    page.wait_for_function(f"() => document.querySelector('{media}').readyState >= 1", timeout=15_000)
    return context, page, errors


def test_a_cue_becomes_active_and_a_transcript_line_seeks(browser: Any, captioned: Captioned, artifacts: Path) -> None:
    context, page, errors = _open(browser, captioned.link_url, DESKTOP)
    try:
        tracks = page.evaluate(
            "() => [...document.querySelector('video').textTracks].map(t => [t.language, t.label, t.mode])"
        )
        assert tracks[0] == ["en", "English", "showing"]
        assert tracks[1][:2] == ["de", "Deutsch"]
        assert page.locator(".transcript-cue").count() == 4

        page.evaluate("() => { document.querySelector('video').currentTime = 3; }")
        page.wait_for_function(
            "() => { const t = document.querySelector('video').textTracks[0];"
            " return t.activeCues && t.activeCues.length === 1 && t.activeCues[0].text.startsWith('Prophase'); }",
            timeout=10_000,
        )
        page.wait_for_function(f"() => ({ACTIVE})().length === 1 && ({ACTIVE})()[0].includes('Prophase')")
        assert page.locator(".transcript-cue.is-active").get_attribute("aria-current") == "true"

        page.get_by_role("button", name="0:05 Metaphase").click()
        page.wait_for_function(f"() => Math.abs(({TIME})() - 5) < 0.3", timeout=10_000)
        page.wait_for_function(f"() => ({ACTIVE})()[0].includes('Metaphase')", timeout=10_000)
        page.screenshot(path=str(artifacts / "captions-viewer-1280.png"))

        # Keyboard: one line in the tab order; arrows move between lines, Enter plays from one.
        first = page.locator(".transcript-cue").first
        first.focus()
        page.keyboard.press("End")
        assert page.evaluate("() => document.activeElement.textContent").startswith("0:07")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => Math.abs(({TIME})() - 5) < 0.3", timeout=10_000)
        page.keyboard.press("Home")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => ({TIME})() < 0.3", timeout=10_000)

        # The transcript follows the language chosen, and so do the captions shown.
        page.get_by_label("Captions language").select_option("de")
        page.wait_for_function(
            "() => document.querySelector('.transcript-cue').textContent.includes('Zellen teilen sich')",
            timeout=10_000,
        )
        modes = page.evaluate("() => [...document.querySelector('video').textTracks].map(t => [t.language, t.mode])")
        assert ["de", "showing"] in modes
        assert ["en", "showing"] not in modes
        assert script_failures(errors) == []
    finally:
        context.close()


def test_the_transcript_sits_below_the_video_on_a_phone(browser: Any, captioned: Captioned, artifacts: Path) -> None:
    context, page, errors = _open(browser, captioned.link_url, PHONE)
    try:
        video = page.locator("video").bounding_box()
        panel = page.locator("[data-transcript]").bounding_box()
        assert video is not None
        assert panel is not None
        assert panel["y"] >= video["y"] + video["height"]  # below, not beside
        assert panel["x"] + panel["width"] <= PHONE["width"] + 1  # no sideways scrolling
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "captions-viewer-375.png"), full_page=True)
        assert script_failures(errors) == []
    finally:
        context.close()


def test_the_file_page_adds_captions_and_names_the_bad_line(
    browser: Any, server: Server, captioned: Captioned, artifacts: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)
    try:
        sign_in(page, server)
        page.goto(f"{server.url}/files/{captioned.file_id}")
        section = page.locator("#captions")
        assert section.locator("tbody tr").count() == 2
        page.wait_for_function("() => document.querySelector('video[data-preview]').textTracks.length === 2")

        page.locator("#caption-file").set_input_files(
            files=[{"name": "fr.vtt", "mimeType": "text/vtt", "buffer": b"WEBVTT\n\n00:01.000 --> 00:00.500\nSalut\n"}]
        )
        page.get_by_label("Language").fill("fr")
        page.get_by_role("button", name="Add captions").click()
        page.locator(".toast-error", has_text="Line 3: the cue ends before it starts.").wait_for(timeout=10_000)
        assert section.locator("tbody tr").count() == 2

        page.locator("#caption-file").set_input_files(
            files=[{"name": "fr.srt", "mimeType": "application/x-subrip", "buffer": GERMAN}]
        )
        page.get_by_label("Language").fill("fr")
        page.get_by_role("button", name="Add captions").click()
        page.locator(".toast", has_text="Added Français captions: 4 cues (converted from SRT).").wait_for(
            timeout=10_000
        )
        assert page.locator("#captions tbody tr").count() == 3
        page.screenshot(path=str(artifacts / "captions-file-page-1280.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(artifacts / "captions-file-page-375.png"), full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert script_failures(errors) == []
    finally:
        context.close()


def test_audio_has_a_transcript_that_seeks(browser: Any, server: Server, artifacts: Path) -> None:
    audio = _captioned(server, DEMO_AUDIO, [("en.vtt", ENGLISH, {"language": "en", "default": "true"})])
    context, page, errors = _open(browser, audio.link_url, DESKTOP, media="audio")
    try:
        assert page.locator(".transcript-cue").count() == 4
        assert page.locator("[data-transcript-language]").count() == 0  # one language: no picker
        page.get_by_role("button", name="0:07 Anaphase").click()
        page.wait_for_function(
            "() => Math.abs(document.querySelector('audio').currentTime - 7.5) < 0.3", timeout=10_000
        )
        page.wait_for_function(f"() => ({ACTIVE})()[0].includes('Anaphase')", timeout=10_000)
        page.screenshot(path=str(artifacts / "captions-audio-1280.png"))
        assert script_failures(errors) == []
    finally:
        context.close()
