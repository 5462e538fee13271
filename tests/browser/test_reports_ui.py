"""The daily reports page in a real browser: a ready day downloads as CSV, the settings save; desktop and phone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from studyshelf.analytics.reports.daily import today_in
from studyshelf.analytics.reports.models import DailyRollup, RolledDay
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import Organization
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.browser.conftest import DESKTOP, PHONE, Server, sign_in, watch_script_errors
from tests.browser.test_partner_ui import NO_SIDEWAYS_SCROLL, OPERATOR, _switch_to

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shelf(server: Server) -> Iterator[Services]:
    """The server's own database, to put a rolled-up day in it."""
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith("STUDYSHELF_")]:
            env.delenv(key)
        for key, value in server.env.items():
            env.setenv(key, value)
        settings = Settings()
    built = build_services(settings)
    yield built
    built.engine.dispose()


def _roll_yesterday(services: Services) -> str:
    """A day of the operator's usage (merged, so rows the demo may have rolled itself are overwritten)."""
    day = today_in("UTC", services.clock.now()) - timedelta(days=1)
    with unit_of_work(services.write_sessions) as db:
        org = db.scalars(select(Organization).where(Organization.name == OPERATOR)).one()
        zero = dict.fromkeys(("viewers", "load_ok", "fails", "downloads", "blocked", "bytes", "load_ms_sum"), 0)
        zero |= {f"h{i}": 0 for i in range(16)}
        for dim, value, views, fails in (
            ("", "", 1520, 12),
            ("country", "GB", 1200, 7),
            ("browser", "Firefox", 320, 5),
        ):
            metrics = {**zero, "views": views, "fails": fails, "load_ok": views - fails, "viewers": views // 3}
            db.merge(DailyRollup(tz="UTC", scope=str(org.id), day=day, dim=dim, value=value, **metrics))
        db.merge(RolledDay(tz="UTC", day=day, events=1520))
    return day.isoformat()


def test_reports_page_downloads_a_day_and_saves_settings(
    browser: Any, server: Server, shelf: Services, artifacts: Path
) -> None:
    day = _roll_yesterday(shelf)
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    errors = watch_script_errors(page)
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    page.goto(server.url + "/analytics/reports")
    assert page.get_by_role("heading", name="Daily reports").is_visible()
    row = page.locator("tr.report-day", has=page.locator(f'time[datetime="{day}"]'))
    assert "Ready" in row.inner_text()
    assert "1,520" in row.inner_text()
    page.screenshot(path=str(artifacts / "reports-desktop.png"), full_page=True)
    with page.expect_download() as info:
        row.get_by_role("link", name=f"Download the CSV report of {day}").click()
    download = info.value
    assert download.suggested_filename.endswith(f"-{day}.csv")
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0].startswith("day,section,key,name")
    assert lines[1].startswith(f"{day},total,")

    page.select_option("#report-tz", "Europe/Lisbon")
    page.fill("#report-emails", "analytics@example.edu")
    page.get_by_role("button", name="Save report settings").click()
    page.wait_for_url("**/analytics/reports?saved=true*")
    assert page.get_by_text("Report settings saved.").is_visible()
    assert page.locator("#report-tz").input_value() == "Europe/Lisbon"
    page.locator("#report-settings").screenshot(path=str(artifacts / "reports-settings.png"))
    page.select_option("#report-tz", "UTC")
    page.fill("#report-emails", "")
    page.get_by_role("button", name="Save report settings").click()
    page.wait_for_url("**/analytics/reports?saved=true*")
    assert errors == []
    context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    page = phone.new_page()
    sign_in(page, server)
    _switch_to(page, OPERATOR)
    page.goto(server.url + "/analytics/reports")
    page.screenshot(path=str(artifacts / "reports-phone.png"), full_page=True)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    phone.close()
