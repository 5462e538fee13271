"""The web UI in a real browser: sign in, drag-and-drop upload, play a video, render a PDF; screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors

pytestmark = pytest.mark.browser

DROP_FILE = """
([selector, name, text]) => {
  const zone = document.querySelector(selector);
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/plain" }));
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
  }
}
"""

PLAY_MUTED = """
async () => {
  const video = document.querySelector("video");
  video.muted = true;
  await video.play();
  return video.currentTime;
}
"""

CANVAS_HAS_INK = """
(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4 * 17) {
    if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) ink += 1;
  }
  return ink;
}
"""


def _find_file(page: Any, server: Server, name: str) -> str:
    """Walk the signed-in user's libraries through the API for a file by name; return its id."""
    me = page.request.get(server.url + "/api/v1/me").json()
    pending = [org["root_folder_id"] for org in me["organizations"]]
    while pending:
        folder = pending.pop()
        for item in page.request.get(f"{server.url}/api/v1/folders/{folder}/children?limit=500").json()["items"]:
            if item["kind"] == "folder":
                pending.append(item["id"])
            elif item["name"] == name:
                return str(item["id"])
    raise AssertionError(f"no file named {name!r} in the demo")


def test_ui_end_to_end(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)

    page.goto(server.url + "/login")
    page.screenshot(path=str(artifacts / "login-desktop.png"))
    sign_in(page, server)
    page.screenshot(path=str(artifacts / "library-desktop.png"), full_page=True)

    page.get_by_role("link", name="Biology 101").click()
    page.wait_for_url("**/library/**")
    page.evaluate(DROP_FILE, ["[data-dropzone]", "dropped-notes.txt", "Notes dropped in by the browser test.\n"])
    item = page.locator(".upload-item", has_text="dropped-notes.txt")
    item.wait_for()
    page.wait_for_function("() => document.querySelector('.upload-item progress')?.value === 100")
    page.locator(".upload-item.is-done").wait_for()
    page.locator("#listing a", has_text="dropped-notes.txt").wait_for()
    page.screenshot(path=str(artifacts / "upload-desktop.png"), full_page=True)

    video_id = _find_file(page, server, "Mitosis — lecture.mp4")
    page.goto(f"{server.url}/files/{video_id}")
    video = page.locator("video")
    video.wait_for()
    page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    started = page.evaluate(PLAY_MUTED)
    page.wait_for_function(f"() => document.querySelector('video').currentTime > {started} + 0.5", timeout=15_000)
    page.evaluate("() => document.querySelector('video').pause()")
    page.screenshot(path=str(artifacts / "video-desktop.png"), full_page=True)

    pdf_id = _find_file(page, server, "Cell structure.pdf")
    page.goto(f"{server.url}/files/{pdf_id}")
    page.wait_for_selector("[data-pdf-pages] canvas", timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined", timeout=20_000
    )
    assert page.locator("[data-pdf-src]").get_attribute("data-error") is None
    ink = page.locator("[data-pdf-pages] canvas").first.evaluate(CANVAS_HAS_INK)
    assert ink > 50, "the first PDF page rendered blank"
    page.screenshot(path=str(artifacts / "pdf-desktop.png"), full_page=True)

    page.goto(server.url + "/settings/tokens")
    page.get_by_label("Name").fill("Browser test")
    page.get_by_role("button", name="Create token").click()
    page.locator("#new-token").wait_for()
    assert page.locator("#new-token").input_value().startswith("ss_")
    page.screenshot(path=str(artifacts / "tokens-desktop.png"), full_page=True)

    page.goto(server.url + "/api/docs")
    page.locator(".swagger-ui .info").wait_for(timeout=20_000)
    page.screenshot(path=str(artifacts / "api-docs-desktop.png"))

    assert not script_failures(errors), errors
    context.close()


def test_ui_on_a_phone(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server.url + "/login")
    page.screenshot(path=str(artifacts / "login-phone.png"))
    sign_in(page, server)
    page.get_by_role("link", name="Biology 101").click()
    page.wait_for_url("**/library/**")
    page.get_by_role("link", name="Media").click()
    page.wait_for_url("**/library/**")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], "the page scrolls sideways"
    page.screenshot(path=str(artifacts / "library-phone.png"), full_page=True)
    page.locator("summary[aria-label^='Actions for']").first.click()
    page.screenshot(path=str(artifacts / "menu-phone.png"))
    page.keyboard.press("Escape")

    pdf_id = _find_file(page, server, "Cell structure.pdf")
    page.goto(f"{server.url}/files/{pdf_id}")
    page.wait_for_function(
        "() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined", timeout=20_000
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(artifacts / "pdf-phone.png"), full_page=True)

    page.goto(server.url + "/trash")
    page.screenshot(path=str(artifacts / "trash-phone.png"), full_page=True)
    context.close()


def test_keyboard_new_folder(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, server)
    page.get_by_role("button", name="New folder").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#new-folder-dialog")
    dialog.wait_for(state="visible")
    page.keyboard.type("Made with the keyboard")
    page.screenshot(path=str(artifacts / "dialog-desktop.png"))
    page.keyboard.press("Enter")
    page.locator("#listing a", has_text="Made with the keyboard").wait_for()
    assert not dialog.is_visible()
    context.close()
