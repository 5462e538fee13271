"""WCAG 2.1 AA in Chromium: axe-core (vendored under tests/browser/vendor/) on every kind of page, from the
sign-in page to the learner's viewer for each kind of material, with no serious or critical violation; the
PDF viewer by keyboard alone, with its text layer; and the viewer in German, as a German browser asks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import DESKTOP, PHONE, Server, script_failures, sign_in, watch_script_errors

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
# What a learner's browser says; a scripted user agent would get the link-preview card instead.
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN_AXE = """
async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(" ")} :: ${n.failureSummary.replace(/\\s+/g, " ")}`),
    }));
}
"""
FOCUS_SHOWN = """
() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
  const label = (element.textContent || element.getAttribute("aria-label") || "").trim().slice(0, 40);
  return { name: `${element.tagName.toLowerCase()} ${label}`, ring };
}
"""
MATERIAL = {"pdf": ".pdf", "video": ".mp4", "audio": ".mp3", "image": ".png"}


@dataclass
class Demo:
    api: httpx.Client
    org_id: str
    files: dict[str, str]  # kind → file id
    folder_id: str

    def link(self, target_id: str, *, target_type: str = "file", mode: str = "direct") -> str:
        body = {
            "target_type": target_type,
            "target_id": target_id,
            "mode": mode,
            "org_id": self.org_id,
            "allowed_origins": ["https://lms.example.edu"],
            "label": "accessibility test",
        }
        response = self.api.post("/api/v1/links", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["url"])


def _walk(api: httpx.Client) -> tuple[str, dict[str, str], str]:
    """The organisation holding a demo file of every kind: its id, a file id per kind and that PDF's folder."""
    for org in api.get("/api/v1/me").json()["organizations"]:
        files: dict[str, str] = {}
        folder_of: dict[str, str] = {}
        pending = [org["root_folder_id"]]
        while pending:
            folder = pending.pop()
            response = api.get(f"/api/v1/folders/{folder}/children", params={"limit": 500})
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                if item["kind"] == "folder":
                    pending.append(item["id"])
                    continue
                for kind, suffix in MATERIAL.items():
                    if item["name"].lower().endswith(suffix) and kind not in files:
                        files[kind] = str(item["id"])
                        folder_of[kind] = folder
        if set(files) == set(MATERIAL):
            return str(org["id"]), files, folder_of["pdf"]
    raise AssertionError("the demo has no organisation with a PDF, a video, an audio file and an image")


@pytest.fixture(scope="module")
def demo(server: Server) -> Iterator[Demo]:
    with httpx.Client(base_url=server.url, timeout=15) as session:
        login = session.post("/api/v1/auth/login", json={"email": server.email, "password": server.password})
        assert login.status_code == 200, login.text
        created = session.post(
            "/api/v1/auth/tokens",
            json={"name": f"a11y test {uuid.uuid4().hex[:6]}"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
    with httpx.Client(base_url=server.url, timeout=15, headers={"Authorization": f"Bearer {token}"}) as api:
        org_id, files, folder_id = _walk(api)
        yield Demo(api, org_id, files, folder_id)


def _context(browser: Any, **options: Any) -> Any:
    # axe is injected as a script tag, which the pages' own CSP (script-src 'self') would refuse.
    return browser.new_context(**{"viewport": DESKTOP, **options}, bypass_csp=True, user_agent=BROWSER_UA)


def _violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE, WCAG_AA)
    return found


class Audit:
    """Every page checked, and what axe found on each."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}

    def check(self, name: str, page: Any) -> None:
        self.found[name] = _violations(page)

    def report(self) -> str:
        lines = []
        for name, violations in self.found.items():
            for v in violations:
                lines.append(f"{name}: {v['impact']} {v['id']} — {v['help']}")
                lines.extend(f"    {node}" for node in v["nodes"])
        return "\n".join(lines)

    def assert_clean(self) -> None:
        assert not any(self.found.values()), "axe found serious or critical violations:\n" + self.report()


def _tab_through(page: Any, steps: int) -> list[str]:
    """Tab through the page's first controls; the ones that show no focus ring (outline or box-shadow)."""
    unseen = []
    page.locator("body").focus()
    for _ in range(steps):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_SHOWN)
        if focused is not None and not focused["ring"]:
            unseen.append(focused["name"])
    return unseen


def _settled(page: Any) -> None:
    page.wait_for_load_state("networkidle")


def test_every_member_page_is_axe_clean(browser: Any, server: Server, demo: Demo, artifacts: Path) -> None:
    audit = Audit()
    context = _context(browser)
    page = context.new_page()
    errors = watch_script_errors(page)
    page.goto(server.url + "/login")
    audit.check("sign-in", page)
    sign_in(page, server)
    _settled(page)
    audit.check("library (root folder)", page)
    page.goto(f"{server.url}/library/{demo.folder_id}")
    _settled(page)
    audit.check("library folder", page)
    assert not _tab_through(page, 25), "controls without a visible focus"

    page.goto(f"{server.url}/files/{demo.files['pdf']}")
    page.wait_for_function("() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined")
    audit.check("file page (PDF)", page)
    page.get_by_role("link", name="Share with partners").click()
    page.locator(
        "#share-dialog [data-dialog-content] form, #share-dialog [data-dialog-content] .empty-state"
    ).first.wait_for()
    _settled(page)
    audit.check("share dialog", page)
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Get link").click()
    page.locator("#link-dialog [data-dialog-content] form").first.wait_for()
    _settled(page)
    audit.check("get-link dialog", page)
    page.keyboard.press("Escape")
    page.goto(f"{server.url}/files/{demo.files['video']}")
    page.locator("video").wait_for()
    audit.check("file page (video)", page)

    for name, path in [
        ("links", "/links"),
        ("shared with us", "/shared"),
        ("trash", "/trash"),
        ("analytics", "/analytics"),
        ("reports", "/analytics/reports"),
        ("LTI admin", "/settings/lms"),
        ("organisation settings", "/settings/organization"),
        ("audit log", "/settings/audit"),
        ("API tokens", "/settings/tokens"),
        ("alarms and incidents", "/settings/incidents"),
        ("backups", "/settings/backups"),
        ("error page", f"/library/{uuid.uuid4()}"),
    ]:
        page.goto(server.url + path)
        _settled(page)
        audit.check(name, page)
    page.goto(server.url + "/settings/incidents")
    incident = page.locator("a[href^='/settings/incidents/']").first
    if incident.count():
        incident.click()
        _settled(page)
        audit.check("incident", page)
    page.screenshot(path=str(artifacts / "a11y-last-member-page.png"), full_page=True)
    audit.assert_clean()
    assert not script_failures(errors), errors
    context.close()


def test_every_viewer_page_is_axe_clean(browser: Any, server: Server, demo: Demo, artifacts: Path) -> None:
    audit = Audit()
    context = _context(browser)
    page = context.new_page()
    errors = watch_script_errors(page)
    for kind in MATERIAL:
        page.goto(demo.link(demo.files[kind]))
        if kind == "pdf":
            page.wait_for_function("() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined")
        else:
            page.locator("[data-media]").wait_for()
        _settled(page)
        audit.check(f"viewer ({kind})", page)
        page.screenshot(path=str(artifacts / f"a11y-viewer-{kind}.png"))
    page.goto(demo.link(demo.folder_id, target_type="folder"))
    _settled(page)
    audit.check("viewer (folder)", page)
    assert not _tab_through(page, 8), "viewer controls without a visible focus"
    blocked = demo.link(demo.files["image"], mode="embed")  # opened on its own, outside any course page
    response = page.goto(blocked)
    assert response is not None
    assert response.status == 403
    audit.check("blocked page", page)
    page.screenshot(path=str(artifacts / "a11y-blocked.png"))
    page.goto(server.url + "/v/not-a-link")
    audit.check("not-a-link page", page)
    audit.assert_clean()
    assert not script_failures(errors), errors
    context.close()


def test_the_pdf_viewer_works_by_keyboard_with_a_text_layer(browser: Any, demo: Demo, artifacts: Path) -> None:
    context = _context(browser, viewport=PHONE, reduced_motion="reduce")
    page = context.new_page()
    page.goto(demo.link(demo.files["pdf"]))
    page.wait_for_function("() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined")
    text = page.locator(".pdf-page[data-page='1'] .textLayer").inner_text()
    assert len(text.strip()) > 20, "the first page has no text layer"
    count = int(page.locator("[data-pdf-src]").get_attribute("data-rendered") or "0")
    status = page.locator("[data-pdf-status]")
    assert status.inner_text() == f"Page 1 of {count}"
    pages = page.locator("[data-pdf-pages]")
    pages.focus()
    if count > 1:
        page.keyboard.press("PageDown")
        page.wait_for_function("() => document.activeElement?.dataset.page === '2'")
        assert status.inner_text() == f"Page 2 of {count}"
        page.keyboard.press("Home")
        page.wait_for_function("() => document.activeElement?.dataset.page === '1'")
    # Tab reaches the toolbar's controls, each with a visible focus ring.
    next_button = page.get_by_role("button", name="Next page")
    assert next_button.is_disabled() == (count == 1)
    page.get_by_label("Page number").focus()
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + '|' + s.boxShadow; }"
    )
    assert outline != "none|none", "the page field shows no focus"
    page.screenshot(path=str(artifacts / "a11y-pdf-phone.png"))
    context.close()


def test_a_german_browser_gets_a_german_viewer(browser: Any, demo: Demo, artifacts: Path) -> None:
    context = _context(browser, locale="de-DE")
    page = context.new_page()
    page.goto(demo.link(demo.files["pdf"]))
    page.wait_for_function("() => document.querySelector('[data-pdf-src]').dataset.rendered !== undefined")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("button", name="Nächste Seite").count() == 1
    assert page.locator("[data-pdf-status]").inner_text().startswith("Seite 1 von ")
    assert "Bereitgestellt von" in page.locator("footer").inner_text()
    assert not _violations(page)
    page.screenshot(path=str(artifacts / "a11y-viewer-pdf-de.png"))
    page.set_viewport_size(PHONE)
    page.goto(demo.link(demo.files["image"], mode="embed"))  # refused outside a course page
    assert "Dieses Material ist in Ihrem Kurs verfügbar" in page.locator("h1").inner_text()
    assert not _violations(page)
    page.screenshot(path=str(artifacts / "a11y-blocked-de-phone.png"))
    context.close()
