"""The analytics dashboard in a real browser: charts drawn, KPIs right, drill-downs, desktop and phone screenshots."""

from __future__ import annotations

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
from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in

pytestmark = pytest.mark.browser

OPERATOR = "Northwind Publishing"
PARTNER = "Riverside University"
CANVAS_HAS_INK = """
(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4 * 13) {
    if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) ink += 1;
  }
  return ink;
}
"""


@dataclass(frozen=True)
class Seeded:
    url: str  # the dashboard for the seeded fortnight
    pdf_id: str
    video_id: str


def _library(page: Any, server: Server) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Organisation ids by name, and every file of the operator's library (name -> id, folder, path)."""
    me = page.request.get(server.url + "/api/v1/me").json()
    orgs = {org["name"]: org["id"] for org in me["organizations"]}
    root = next(org["root_folder_id"] for org in me["organizations"] if org["name"] == OPERATOR)
    files: dict[str, dict[str, str]] = {}
    pending = [(root, [root])]
    while pending:
        folder, path = pending.pop()
        for item in page.request.get(f"{server.url}/api/v1/folders/{folder}/children?limit=500").json()["items"]:
            if item["kind"] == "folder":
                pending.append((item["id"], [*path, item["id"]]))
            else:
                files[item["name"]] = {"id": item["id"], "folder": folder, "path": ",".join(path)}
    return orgs, files


def _seed(page: Any, server: Server) -> Seeded:
    """A fortnight long ago (no other test's traffic there): 12 views, 2 failed loads, a download."""
    orgs, files = _library(page, server)
    first = utcnow().date() - timedelta(days=120)
    pdf, video = files["Cell structure.pdf"], files["Mitosis — lecture.mp4"]

    def at(day: int) -> datetime:
        return datetime.combine(first + timedelta(days=day), time(10), UTC)

    def use(file: dict[str, str], type_: str, day: int, **fields: Any) -> Event:
        category = "pdf" if file is pdf else "video"
        base = {
            "owner_org": orgs[OPERATOR],
            "partner_org": orgs[PARTNER],
            "file_id": file["id"],
            "folder_id": file["folder"],
            "folder_path": tuple(file["path"].split(",")),
            "category": category,
            "extension": "pdf" if file is pdf else "mp4",
            "viewer": uuid.uuid4().hex,
        }
        return event(type_, **{"ts": at(day), **base, **fields})

    events = [use(pdf, "view", d % 14, country="GB") for d in range(6)]
    events += [use(pdf, "view", d, country="DE", browser="Firefox", os="Linux") for d in (2, 5, 9)]
    events += [use(video, "view", 11, country="US", browser="Safari", os="iOS", device="mobile", lms="canvas")]
    events += [use(video, "view", d, country="FR", partner_org=orgs[OPERATOR], lms="none") for d in (12, 13)]
    events += [use(pdf, "load_ok", d, load_ms=180 + 40 * d) for d in range(5)]
    events += [use(video, "load_fail", 11, error_class="network"), use(video, "load_fail", 12, error_class="decode")]
    events += [use(pdf, "download", 3, bytes=3 * 1024 * 1024)]
    # The fortnight before: the video was watched more, the PDF less (rising and falling files).
    events += [use(video, "view", d - 14, country="US", lms="canvas") for d in range(5)]
    events += [use(pdf, "view", -3, country="GB")]
    # The last minutes, for the live panel.
    recent = utcnow() - timedelta(minutes=3)
    events += [use(pdf, "view", 0, country="GB", ts=recent - timedelta(minutes=m)) for m in range(4)]
    events += [use(video, "load_fail", 0, error_class="decode", ts=recent)]
    warehouse = build_warehouse(f"duckdb://{Path(server.env['STUDYSHELF_DATA_DIR']) / 'warehouse.duckdb'}")
    try:
        assert warehouse.insert(events) == len(events)
    finally:
        warehouse.close()
    last = first + timedelta(days=13)
    return Seeded(f"{server.url}/analytics?days=custom&from={first}&to={last}", pdf["id"], video["id"])


@pytest.fixture(scope="module")
def seeded(browser: Any, server: Server) -> Seeded:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, server)
    try:
        return _seed(page, server)
    finally:
        context.close()


def _switch_to_operator(page: Any) -> None:
    if page.locator("#org-switch option:checked").inner_text().strip() != OPERATOR:
        with page.expect_navigation():
            page.select_option("#org-switch", label=OPERATOR)
        page.wait_for_url("**/library/**")


def _kpi(page: Any, key: str) -> str:
    text: str = page.locator(f"[data-kpi='{key}'] .kpi-value").inner_text()
    return text.strip()


def _loaded(page: Any) -> None:
    page.locator("#dashboard .dashboard-body:not([aria-busy])").wait_for()
    page.wait_for_function("() => !document.querySelector('#dashboard.htmx-request')")


def _watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on(
        "console", lambda msg: errors.append(f"{page.url} {msg.location} {msg.text}") if msg.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    return errors


def _no_page_errors(errors: list[str]) -> None:
    assert not script_failures(errors), errors


def test_dashboard_charts_and_kpis(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)

    page.get_by_role("link", name="Analytics", exact=True).click()
    page.wait_for_url("**/analytics")
    shell = page.request.get(seeded.url, headers={"Accept": "text/html"}).text()
    assert 'id="dashboard-loader"' in shell, "the page should show a loading state while the figures load"

    page.goto(seeded.url)
    _loaded(page)
    assert _kpi(page, "views") == "12"
    assert _kpi(page, "viewers") == "12"
    assert _kpi(page, "fails") == "2"
    assert "29% of 7 loads" in page.locator("[data-kpi='fails']").inner_text()
    assert _kpi(page, "downloads") == "1"
    assert _kpi(page, "bytes") == "3.0 MB"
    assert _kpi(page, "load") == "260 ms"

    canvas = page.locator(".series-chart canvas").first
    canvas.wait_for()
    assert canvas.evaluate(CANVAS_HAS_INK) > 50, "the time series is blank"
    countries = page.locator("[data-map-table] tbody tr")
    assert countries.count() == 4
    assert page.locator(".world-map a[data-country]").count() == 4
    assert countries.first.locator("[data-region]").inner_text() == "United Kingdom"  # named by the browser
    assert page.locator("[data-breakdown='partner']").inner_text().count(PARTNER) == 1
    files = page.locator("[data-top='files'] tbody tr")
    assert files.count() == 2
    assert (
        files.first.get_by_role("link", name="Cell structure.pdf", exact=True).get_attribute("href")
        == f"/files/{seeded.pdf_id}"
    )
    page.screenshot(path=str(artifacts / "analytics-desktop.png"), full_page=True)
    _no_page_errors(errors)
    context.close()


def test_dashboard_drill_down_and_filters(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(seeded.url)
    _loaded(page)
    countries = page.locator("[data-map-table] tbody tr a")

    # Drill down by country: the figures narrow, a chip says so, the address can be shared.
    countries.first.click()
    page.locator(".chip", has_text="United Kingdom").wait_for()
    _loaded(page)
    assert _kpi(page, "views") == "6"
    assert "country=GB" in page.url
    assert page.locator("#a-country").input_value() == "GB"

    # Then by file, from the top files table; removing the country chip keeps the file.
    page.locator(f"[data-drill='{seeded.pdf_id}']").click()
    page.locator(".chip", has_text="Cell structure.pdf").wait_for()
    _loaded(page)
    assert _kpi(page, "views") == "6"
    page.locator(".chip", has_text="United Kingdom").click()
    page.wait_for_function("() => !location.search.includes('country=')")
    _loaded(page)
    assert _kpi(page, "views") == "9"
    page.screenshot(path=str(artifacts / "analytics-drilldown-desktop.png"), full_page=True)

    # A select filters too; back in history returns to the previous view.
    page.select_option("#a-browser", "Firefox")
    page.wait_for_function("() => location.search.includes('browser=Firefox')")
    _loaded(page)
    assert _kpi(page, "views") == "3"

    # Nothing in a period: the empty state says what to do.
    page.goto(f"{server.url}/analytics?days=custom&from=2020-01-01&to=2020-01-31")
    page.locator(".dashboard-empty").wait_for()
    page.screenshot(path=str(artifacts / "analytics-empty-desktop.png"), full_page=True)

    # The file page links to its performance page.
    page.goto(f"{server.url}/files/{seeded.video_id}")
    page.locator("[data-usage-link]").click()
    page.wait_for_url(f"**/analytics/files/{seeded.video_id}")
    page.locator("h1", has_text="Mitosis").wait_for()
    _no_page_errors(errors)
    context.close()


def test_dashboard_on_a_phone(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(seeded.url)
    _loaded(page)
    page.locator(".series-chart canvas").first.wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], "the page scrolls sideways"
    page.screenshot(path=str(artifacts / "analytics-phone.png"), full_page=True)
    page.locator(".avatar").click()
    assert page.get_by_role("link", name="Analytics", exact=True).is_visible()
    assert not script_failures(errors), errors
    context.close()


def test_comparison_map_and_history(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(seeded.url)
    _loaded(page)

    # Comparison with the fortnight before: 12 views against 6, the video falling, the PDF rising.
    assert page.locator("[data-change='views']").inner_text().strip().startswith("+6 (+100%)")
    assert page.locator("[data-movers='rising'] li[data-key]").first.get_attribute("data-key") == seeded.pdf_id
    assert page.locator("[data-movers='falling'] li[data-key]").first.get_attribute("data-key") == seeded.video_id
    page.locator("[data-compare-toggle]").click()
    page.wait_for_function("() => location.search.includes('compare=1')")
    _loaded(page)
    page.locator(".series-chart .u-legend .u-series").nth(3).wait_for()
    overlay = page.locator(".series-chart .u-legend .u-series").nth(3).inner_text()
    assert overlay.startswith("Views, "), overlay  # "Views, 26 Jul – 8 Aug 2026": the previous fortnight

    # The map: countries drawn from the vendored shapes, coloured; a country is reachable by keyboard.
    shape = page.locator(".world-map a[data-country='GB'] use")
    box = shape.bounding_box()
    assert box is not None, "the map shape did not render"
    assert min(box["width"], box["height"]) > 5, box
    fill = shape.evaluate("(el) => getComputedStyle(el).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)"), fill
    page.locator("[data-map-mode='fails']").click()
    assert page.locator(".world-map").get_attribute("data-mode") == "fails"
    page.screenshot(path=str(artifacts / "analytics-map-desktop.png"), full_page=True)
    page.locator(".world-map a[data-country='DE']").focus()
    page.keyboard.press("Enter")
    page.locator(".chip", has_text="Germany").wait_for()
    _loaded(page)
    assert "country=DE" in page.url
    assert "compare=1" in page.url
    assert _kpi(page, "views") == "3"

    # Back walks through the drill-downs: the view before it, with its chart drawn again.
    page.go_back()
    page.wait_for_function("() => !location.search.includes('country=')")
    page.locator("[data-kpi='views'] .kpi-value").filter(has_text="12").wait_for()
    canvas = page.locator(".series-chart canvas").first
    canvas.wait_for()
    assert canvas.evaluate(CANVAS_HAS_INK) > 50, "the restored chart is blank"
    page.go_forward()
    page.locator(".chip", has_text="Germany").wait_for()
    _no_page_errors(errors)
    context.close()


def test_live_panel_and_presets(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.clock.install()  # the live panel's polling runs on the page's timers, which the test moves on

    # The live panel: the last minutes' views, refreshed every 10 s without reloading the page.
    page.goto(f"{server.url}/analytics")
    live = page.locator("#live-panel[hx-trigger='every 10s']")
    live.wait_for()
    # The browser tests share one server: views other tests made in the last minutes count too.
    assert int(live.locator("[data-live='views'] dd").inner_text().strip().replace(",", "")) >= 4
    assert int(live.locator("[data-live='fails'] dd").inner_text().strip().replace(",", "")) >= 1
    assert live.locator(f"[data-live-file='{seeded.pdf_id}']").count() == 1
    with page.expect_response(lambda r: "/analytics/live" in r.url):
        page.clock.run_for(11_000)
    page.locator("#live-panel[hx-trigger='every 10s']").wait_for()
    page.screenshot(path=str(artifacts / "analytics-live-desktop.png"), full_page=False)

    # Presets: today in the organisation's time zone.
    page.locator("label.segment", has_text="Today").click()
    page.wait_for_function("() => location.search.includes('days=today')")
    _loaded(page)
    assert int(_kpi(page, "views").replace(",", "")) >= 4
    _no_page_errors(errors)
    context.close()


def test_map_and_live_panel_on_a_phone(browser: Any, server: Server, seeded: Seeded, artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = _watch_errors(page)
    sign_in(page, server)
    _switch_to_operator(page)
    page.goto(seeded.url + "&compare=1")
    _loaded(page)
    page.locator("#live-panel[hx-trigger='every 10s']").wait_for()
    page.locator(".series-chart canvas").first.wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], "the page scrolls sideways"
    page.screenshot(path=str(artifacts / "analytics-insight-phone.png"), full_page=True)
    _no_page_errors(errors)
    context.close()
