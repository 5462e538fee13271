"""Partners in a real browser: share a folder with Riverside University, invite a partner user, audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors

pytestmark = pytest.mark.browser

PARTNER = "Riverside University"
OPERATOR = "Northwind Publishing"
STUDENT_EMAIL = "student@riverside.test"
STUDENT_PASSWORD = "riverside-student-pw"
NO_SIDEWAYS_SCROLL = f"() => document.documentElement.scrollWidth <= {PHONE['width']}"


def _switch_to(page: Any, org_name: str) -> None:
    """Work in another organisation through the top bar's switcher (a no-op when it is the current one)."""
    if page.locator("#org-switch option:checked").inner_text().strip() != org_name:
        with page.expect_navigation():
            page.select_option("#org-switch", label=org_name)
        page.wait_for_url("**/library/**")


def _share_with_partner(page: Any, artifacts: Path, shot: str) -> None:
    """Open the share dialog on the 'Biology 101' row and give Riverside University view."""
    page.locator("summary[aria-label='Actions for Biology 101']").click()
    page.get_by_role("link", name="Share with partners…").click()
    dialog = page.locator("#share-dialog")
    dialog.locator("#share-panel").wait_for()
    dialog.locator("#share-org").select_option(label=PARTNER)
    dialog.locator("#share-level").select_option("view")
    dialog.get_by_role("button", name="Share", exact=True).click()
    dialog.locator(".grants-list .item-name", has_text=PARTNER).wait_for()
    assert dialog.is_visible(), "the share dialog closed after sharing"
    page.locator(".toast", has_text=f"Shared with {PARTNER}").wait_for()
    page.screenshot(path=str(artifacts / shot))


def test_share_invite_and_audit(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    _share_with_partner(page, artifacts, "share-dialog-desktop.png")
    page.keyboard.press("Escape")

    # A partner user joins Riverside through an invitation made on the organisation page.
    _switch_to(page, PARTNER)
    page.goto(server.url + "/settings/organization")
    page.get_by_label("E-mail address").fill(STUDENT_EMAIL)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#invitation-link")
    link.wait_for()
    url = link.input_value()
    assert "/invitations/" in url
    page.screenshot(path=str(artifacts / "org-settings-desktop.png"), full_page=True)

    guest = browser.new_context(viewport=DESKTOP)
    student = guest.new_page()
    student_errors = watch_script_errors(student)
    student.goto(server.url + url[url.index("/invitations/") :])
    student.get_by_label("Your name").fill("Sam Student")
    student.get_by_label("Choose a password").fill(STUDENT_PASSWORD)
    student.screenshot(path=str(artifacts / "invitation-desktop.png"))
    student.get_by_role("button", name="Create account and join").click()
    student.wait_for_url("**/library/**")
    student.get_by_role("link", name="Shared with us").click()
    student.wait_for_url("**/shared")
    student.get_by_role("link", name="Biology 101").wait_for()
    student.screenshot(path=str(artifacts / "shared-with-us-desktop.png"), full_page=True)
    student.get_by_role("link", name="Biology 101").click()
    student.get_by_role("link", name="Media").wait_for()
    assert student.get_by_role("button", name="New folder").count() == 0
    student.screenshot(path=str(artifacts / "shared-folder-desktop.png"), full_page=True)

    _switch_to(page, OPERATOR)
    page.goto(server.url + "/settings/audit")
    page.locator("code.action", has_text="grant.create").first.wait_for()
    page.select_option("#f-action", "grant.create")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**action=grant.create**")
    assert page.locator(".audit-table tbody tr").count() >= 1
    assert "action=grant.create" in (page.get_by_role("link", name="Export CSV").get_attribute("href") or "")
    page.goto(server.url + "/settings/audit")
    page.screenshot(path=str(artifacts / "audit-desktop.png"), full_page=True)

    all_errors = errors + student_errors
    assert not script_failures(all_errors), all_errors
    guest.close()
    context.close()


def test_partner_pages_on_a_phone(browser: Any, server: Server, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    page.goto(server.url + "/settings/organization")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the organisation page scrolls sideways"
    page.screenshot(path=str(artifacts / "org-settings-phone.png"), full_page=True)

    page.goto(server.url + "/")
    page.wait_for_url("**/library/**")
    _share_with_partner(page, artifacts, "share-dialog-phone.png")
    page.keyboard.press("Escape")

    page.goto(server.url + "/settings/audit")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the audit log scrolls sideways"
    page.screenshot(path=str(artifacts / "audit-phone.png"), full_page=True)

    _switch_to(page, PARTNER)
    page.goto(server.url + "/shared")
    page.get_by_role("link", name="Biology 101").wait_for()
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "'Shared with us' scrolls sideways"
    page.screenshot(path=str(artifacts / "shared-with-us-phone.png"), full_page=True)
    page.locator("summary.avatar").click()
    page.screenshot(path=str(artifacts / "user-menu-phone.png"))
    context.close()
