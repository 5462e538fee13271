"""A file's and a folder's performance pages in a real browser: the failing audience found from the dashboard's
top files, the chart drawn, the URL reproduces the view, CSV equals the table; desktop and phone screenshots."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from studyshelf.core.clock import utcnow
from studyshelf.events import Event
from studyshelf.warehouse import build_warehouse
from tests.analytics.support import event
from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors
from tests.browser.test_analytics_dashboard import CANVAS_HAS_INK, OPERATOR, PARTNER, _library, _switch_to_operator

pytestmark = pytest.mark.browser
SAFARI_IOS: dict[str, Any] = {"browser": "Mobile Safari", "browser_major": "17", "os": "iOS", "device": "mobile"}


@dataclass(frozen=True)
class Seeded:
    period: str  # the query string of the seeded fortnight
    video_id: str
    folder_id: str  # the deepest folder holding both the video and the PDF


def _seed(page: Any, server: Server) -> Seeded:
    """A fortnight long ago (no other test's traffic there): the lecture video's first upload (since replaced)
    fails to decode on Safari 17 on iOS and loads everywhere else; the current version loads everywhere; the PDF
    beside it loads."""
    orgs, files = _library(page, server)
    first = utcnow().date() - timedelta(days=200)
    video, pdf = files["Mitosis — lecture.mp4"], files["Cell structure.pdf"]
    current = page.request.get(f"{server.url}/api/v1/files/{video['id']}/versions").json()[0]["id"]
    replaced = str(uuid.uuid4())

    def use(file: dict[str, str], type_: str, day: int, **fields: Any) -> Event:
        base = {
            "owner_org": orgs[OPERATOR],
            "partner_org": orgs[PARTNER],
            "file_id": file["id"],
            "folder_id": file["folder"],
            "folder_path": tuple(file["path"].split(",")),
            "category": "video" if file is video else "pdf",
            "extension": "mp4" if file is video else "pdf",
            "viewer": uuid.uuid4().hex,
            "lms": "moodle",
            "course": "course-biology-101",
        }
        at = datetime.combine(first + timedelta(days=day), time(9 + day % 6), UTC)
        return event(type_, ts=at, **{**base, **fields})

    events = []
    for day in range(14):
        version = replaced if day < 7 else current
        for i in range(3):
            safari = i == 0
            audience = {**(SAFARI_IOS if safari else {"country": "DE" if i == 2 else "GB"}), "version_id": version}
            events.append(use(video, "view", day, **audience))
            if safari and version == replaced:
                events.append(use(video, "load_fail", day, error_class="decode", **audience))
            else:
                events.append(use(video, "load_ok", day, load_ms=300 + 40 * day, bytes=2_000_000, **audience))
        events.append(use(pdf, "view", day))
        events.append(use(pdf, "load_ok", day, load_ms=150 + 10 * day))
    warehouse = build_warehouse(f"duckdb://{Path(server.env['STUDYSHELF_DATA_DIR']) / 'warehouse.duckdb'}")
    try:
        assert warehouse.insert(events) == len(events)
    finally:
        warehouse.close()
    period = f"days=custom&from={first}&to={first + timedelta(days=13)}"
    common = [a for a, b in zip(video["path"].split(","), pdf["path"].split(","), strict=False) if a == b]
    return Seeded(period, video["id"], common[-1])


@pytest.fixture(scope="module")
def seeded(browser: Any, server: Server) -> Seeded:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, server)
    try:
        return _seed(page, server)
    finally:
        context.close()


def _tables(page: Any) -> None:
    """Wait for the tables, which the page loads after its headline figures (an HTMX fragment)."""
    page.locator("#insight-details").wait_for()


def _rows(page: Any, table: str) -> list[list[str]]:
    rows = page.locator(f"[data-table='{table}'] tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(rows.count())]


def test_the_failing_audience_is_found_from_the_dashboard(
    browser: Any, server: Server, seeded: Seeded, artifacts: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    errors = watch_script_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(f"{server.url}/analytics?{seeded.period}")
    page.locator(f"[data-top='files'] [data-insight='{seeded.video_id}']").click()
    page.wait_for_url(f"**/analytics/files/{seeded.video_id}?*")
    assert seeded.period in page.url  # the period travels with the drill-down

    assert page.locator("h1").inner_text() == "Mitosis — lecture.mp4"
    assert page.locator("[data-kpi='views'] .kpi-value").inner_text() == "42"
    assert page.locator("[data-kpi='fails'] .kpi-value").inner_text() == "7"
    _tables(page)
    top = _rows(page, "failures")[0]
    assert top[:4] == ["Mobile Safari 17", "17", "iOS", "mobile"]
    assert top[5:] == ["Cannot decode", "7", "14", "50%"]
    browsers = {row[0]: row[3] for row in _rows(page, "browsers")}
    assert browsers == {"Mobile Safari 17": "50%", "Chrome 131": "0.0%"}
    # The re-upload fixed it: the replaced version failed, the current one does not.
    versions = {row[0]: (row[3], row[6], row[7]) for row in _rows(page, "versions")}
    assert versions == {"Removed version": ("21", "7", "33%"), "Version 1 (current)": ("21", "0", "0.0%")}
    assert [row[0] for row in _rows(page, "countries")] == ["United Kingdom", "Germany"]  # named by the browser
    canvas = page.locator("[data-insight-series] canvas").first
    canvas.wait_for()
    assert canvas.evaluate(CANVAS_HAS_INK) > 50, "the series is blank"
    assert page.locator(".histogram .bar-row").count() >= 2

    # The CSV is the table on the screen.
    with page.expect_download() as download:
        page.locator("a[data-csv='failures']").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) - 1 == len(_rows(page, "failures"))
    assert rows[1][:6] == ["Mobile Safari 17", "17", "iOS", "mobile", "GB", "Cannot decode"]

    # The URL reproduces the view: the same figures after a reload, and a filter narrows them consistently.
    shown = _rows(page, "failures")
    page.reload()
    _tables(page)
    assert _rows(page, "failures") == shown
    page.goto(page.url + "&browser=Chrome")
    assert page.locator("[data-kpi='views'] .kpi-value").inner_text() == "28"
    assert page.locator("[data-kpi='fails'] .kpi-value").inner_text() == "0"
    page.locator(".chip", has_text="Chrome").click()
    page.wait_for_url(lambda url: "browser=" not in url)
    assert page.locator("[data-kpi='views'] .kpi-value").inner_text() == "42"
    _tables(page)

    page.screenshot(path=str(artifacts / "insight-file-desktop.png"), full_page=True)
    assert not script_failures(errors), errors
    context.close()


def test_the_folder_page_and_phone_layout(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = watch_script_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(f"{server.url}/analytics/folders/{seeded.folder_id}?{seeded.period}")
    assert page.locator("[data-kpi='views'] .kpi-value").inner_text() == "56"
    _tables(page)
    ranked = _rows(page, "files")
    assert [row[0] for row in ranked] == ["Mitosis — lecture.mp4"]  # the PDF has too few views to rank
    page.screenshot(path=str(artifacts / "insight-folder-desktop.png"), full_page=True)
    page.get_by_role("link", name="Mitosis — lecture.mp4").click()
    page.wait_for_url(f"**/analytics/files/{seeded.video_id}?*")
    page.go_back()
    page.wait_for_url(f"**/analytics/folders/{seeded.folder_id}?*")
    context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    sign_in(page, server)
    _switch_to_operator(page)
    for kind, target in (("file", seeded.video_id), ("folder", seeded.folder_id)):
        page.goto(f"{server.url}/analytics/{kind}s/{target}?{seeded.period}")
        _tables(page)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the {kind} page scrolls sideways at {PHONE['width']} px"
        page.screenshot(path=str(artifacts / f"insight-{kind}-phone.png"), full_page=True)
    assert not script_failures(errors), errors
    phone.close()


def test_the_headline_figures_show_while_the_tables_load(
    browser: Any, server: Server, seeded: Seeded, artifacts: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, server)
    _switch_to_operator(page)

    def hold_the_tables(route: Any) -> None:  # the tables' fragment never arrives: the shell stands alone
        if route.request.headers.get("hx-trigger") == "insight-loader":
            route.abort()
        else:
            route.continue_()

    page.route("**/analytics/files/**", hold_the_tables)
    page.goto(f"{server.url}/analytics/files/{seeded.video_id}?{seeded.period}")
    assert page.locator("[data-kpi='views'] .kpi-value").inner_text() == "42"
    canvas = page.locator("[data-insight-series] canvas").first
    canvas.wait_for()
    assert canvas.evaluate(CANVAS_HAS_INK) > 50, "the series is blank"
    assert page.locator("#insight-loader[aria-busy='true'] .skeleton").first.is_visible()
    assert page.locator("[data-table='failures']").count() == 0
    page.screenshot(path=str(artifacts / "insight-file-loading.png"), full_page=True)
    context.close()
