"""The demo materials: small, sniffed as what they are, licensed, and playable in Chromium."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from studyshelf.demo.seed import DEMO_FILES, asset
from studyshelf.library.sniff import sniff_content_type
from tests.conftest import require_service

EXPECTED_TYPES = {
    "cell-structure.pdf": "application/pdf",
    "cell-diagram.png": "image/png",
    "mitosis-lecture.mp4": "video/mp4",
    "pronunciation-guide.mp3": "audio/mpeg",
    "course-handbook.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "marks-template.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHROMIUM = Path("/usr/bin/chromium")


def test_every_demo_file_is_packaged_and_sniffed_right() -> None:
    assert {item.asset for item in DEMO_FILES} == set(EXPECTED_TYPES)
    total = 0
    for name, expected in EXPECTED_TYPES.items():
        with asset(name).open("rb") as handle:
            head = handle.read(8192)
            total += len(head) + len(handle.read())
        assert sniff_content_type(head, name) == expected, name
    assert total < 1_500_000  # the assets ship in the wheel and the repository


def test_assets_are_licensed() -> None:
    text = asset("LICENSE.md").read_text(encoding="utf-8")
    assert "CC0" in text
    assert all(name in text for name in EXPECTED_TYPES)


@pytest.mark.parametrize("name", ["course-handbook.docx", "marks-template.xlsx"])
def test_office_files_are_valid_packages(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    with asset(name).open("rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.namelist()[0] == "[Content_Types].xml"
        assert "_rels/.rels" in archive.namelist()


def test_pdf_has_pages_with_text() -> None:
    data = asset("cell-structure.pdf").read_bytes()
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    assert b"/Count 3" in data
    assert b"(Cell structure) Tj" in data


PLAYER = """<!doctype html>
<video id="video" src="mitosis-lecture.mp4" muted playsinline></video>
<audio id="audio" src="pronunciation-guide.mp3" muted></audio>
<img id="image" src="cell-diagram.png">
"""

PLAY_BOTH = """async () => {
  const played = async (el) => {
    await el.play();
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(el.id + " did not advance")), 15000);
      const tick = () => (el.currentTime > 1 ? (clearTimeout(t), resolve()) : setTimeout(tick, 50));
      tick();
    });
    el.pause();
    return {duration: el.duration, width: el.videoWidth || 0, height: el.videoHeight || 0,
            audioBytes: el.webkitAudioDecodedByteCount || 0, error: el.error && el.error.code};
  };
  const image = document.getElementById("image");
  await image.decode();
  return {video: await played(document.getElementById("video")), audio: await played(document.getElementById("audio")),
          image: [image.naturalWidth, image.naturalHeight]};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_plays_the_video_and_audio(tmp_path: Path) -> None:
    require_service(CHROMIUM.exists(), "Chromium")
    from playwright.sync_api import sync_playwright

    for name in ("mitosis-lecture.mp4", "pronunciation-guide.mp3", "cell-diagram.png"):
        (tmp_path / name).write_bytes(asset(name).read_bytes())
    (tmp_path / "player.html").write_text(PLAYER, encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.goto((tmp_path / "player.html").as_uri())
            result = page.evaluate(PLAY_BOTH)
        finally:
            browser.close()
    video, audio = result["video"], result["audio"]
    assert (video["width"], video["height"]) == (640, 360)
    assert 9.5 < video["duration"] < 10.5
    assert video["audioBytes"] > 0  # the AAC track decodes too
    assert 9.5 < audio["duration"] < 10.5
    assert audio["audioBytes"] > 0
    assert result["image"] == [640, 400]
