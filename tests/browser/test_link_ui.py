"""The 'Get link' dialog and the Links page in a real browser: create an embed link for the demo video, copy its
snippet, see a paused link flagged and re-enable it; screenshots on a desktop and on a phone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import Link
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors
from tests.browser.test_partner_ui import NO_SIDEWAYS_SCROLL, OPERATOR, _switch_to
from tests.browser.test_ui import _find_file

pytestmark = pytest.mark.browser

VIDEO = "Mitosis — lecture.mp4"
LMS = "http://127.0.0.1:9999"


@pytest.fixture(scope="module")
def shelf(server: Server) -> Iterator[Services]:
    """The server's own database, to pause a link as the spread check would."""
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith("STUDYSHELF_")]:
            env.delenv(key)
        for key, value in server.env.items():
            env.setenv(key, value)
        settings = Settings()
    built = build_services(settings)
    yield built
    built.engine.dispose()


def _create_embed_link(page: Any, server: Server, label: str) -> str:
    """Open the video's page, create an embed link in the dialog; return the link's URL."""
    page.goto(f"{server.url}/files/{_find_file(page, server, VIDEO)}")
    page.get_by_role("link", name="Get link").click()
    dialog = page.locator("#link-dialog")
    dialog.locator("#link-panel form.link-form").wait_for()
    dialog.locator("#link-label").fill(label)
    dialog.get_by_label("Embed in my LMS").check()
    dialog.locator("#link-origins").fill(LMS)
    dialog.get_by_role("button", name="Create link").click()
    snippet = dialog.locator("#new-link-snippet")
    snippet.wait_for()
    assert "padding-top:56.25%" in snippet.input_value()  # a video: the responsive 16:9 wrapper
    url: str = dialog.locator("#new-link-url").input_value()
    assert "/v/" in url
    assert f'src="{url}"' in snippet.input_value()
    assert dialog.locator(".lms-steps h3", has_text="Moodle").is_visible()
    assert dialog.locator(".lms-steps h3", has_text="Canvas").is_visible()
    assert dialog.locator(".link-row .link-name", has_text=label).count() == 1
    return url


def test_get_link_dialog_and_links_page(browser: Any, server: Server, shelf: Services, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    url = _create_embed_link(page, server, "BIO 101 · Autumn")
    page.locator("#link-dialog").get_by_role("button", name="Copy embed code").click()
    page.screenshot(path=str(artifacts / "link-dialog-desktop.png"))
    page.keyboard.press("Escape")

    link_id = url.rsplit("/", 1)[1]
    with unit_of_work(shelf.write_sessions) as db:
        reason = "used from 83 networks within an hour (limit 60)"
        db.execute(update(Link).where(Link.id == link_id).values(suspended_at=utcnow(), suspended_reason=reason))
    page.get_by_role("link", name="Links", exact=True).click()
    page.wait_for_url("**/links")
    banner = page.locator(".links-banner")
    banner.wait_for()
    assert "paused" in (banner.text_content() or "")
    row = page.locator(f"#link-{link_id}")
    assert "83 networks" in (row.locator(".link-reason").text_content() or "")
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx would copy into swapped rows (CSP)
    page.screenshot(path=str(artifacts / "links-desktop.png"), full_page=True, caret="initial")
    row.get_by_role("button", name="Re-enable").click()
    page.locator(f"#link-{link_id} .status-active").wait_for()
    row = page.locator(f"#link-{link_id}")
    row.get_by_text("Extend or edit origins").click()
    row.get_by_label("Allowed origins").fill(f"{LMS}\nhttps://canvas.example.edu")
    row.get_by_role("button", name="Save").click()
    page.locator(f"#link-{link_id} code", has_text="https://canvas.example.edu").wait_for()

    page.goto(server.url + "/settings/organization")
    page.locator("#link-policy form").wait_for()
    page.locator("#link-policy").screenshot(path=str(artifacts / "link-policy-desktop.png"))
    assert not script_failures(errors), errors
    context.close()


def test_get_link_dialog_on_a_phone(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    page.goto(server.url + "/")
    _create_embed_link(page, server, "BIO 102 · Lab")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the link dialog scrolls sideways"
    page.evaluate("() => document.querySelector('#link-dialog').scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "link-dialog-phone.png"))
    page.goto(server.url + "/links")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the Links page scrolls sideways"
    page.screenshot(path=str(artifacts / "links-phone.png"), full_page=True)
    context.close()
