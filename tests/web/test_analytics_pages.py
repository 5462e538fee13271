"""The analytics dashboard page: who may see it, what it shows, filters, drill-downs, empty and error states."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners import service as partners
from studyshelf.partners.models import OrgKind, Role
from studyshelf.web.assets import static_assets
from tests.analytics.support import event
from tests.conftest import PASSWORD, World
from tests.html import attr, parse_html, text_of
from tests.sharing.support import Partnership, grant, partnership
from tests.web.inline_scripts import assert_no_inline_script_but_the_import_map

HTML = {"Accept": "text/html,application/xhtml+xml"}
HTMX = {"HX-Request": "true"}
MARCH = "from=2026-03-01&to=2026-03-31"
DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _uses(world: World, p: Partnership, org: uuid.UUID, n: int, *, ts: datetime = DAY, **fields: Any) -> None:
    """n views of the partnership's file by org (as partner), each by a new viewer, with the given fields."""
    notes = p.notes["id"]
    common = {
        "owner_org": str(p.operator.id),
        "partner_org": str(org),
        "file_id": notes,
        "folder_id": p.course["id"],
        "folder_path": (str(p.publisher.root_folder_id), p.course["id"]),
        "category": "text",
        "extension": "txt",
    }
    events = [event("view", ts=ts, viewer=uuid.uuid4().hex, **{**common, **fields}) for _ in range(n)]
    world.services.warehouse.insert(events)


def _kpis(html: str) -> dict[str, str]:
    values = {
        attr(tile, "data-kpi"): tile.select_one(":scope > .kpi-label + .kpi-value")
        for tile in parse_html(html).select("[data-kpi]")
    }
    return {key: text_of(value) for key, value in values.items() if value is not None}


def _series(html: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(parse_html(html).attr("[data-timeseries]", "data-timeseries"))
    return data


def test_the_page_shell_renders_at_once_and_loads_its_figures(world: World) -> None:
    p = partnership(world)
    page = p.publisher.client.get("/analytics", headers=HTML)
    assert page.status_code == 200
    shell = parse_html(page)
    nav = shell.one('a.nav-mid[href="/analytics"]')
    assert (nav["aria-current"], text_of(nav)) == ("page", "Analytics")
    assert shell.select_one('a[href="/analytics/reports"]')
    loader = shell.one("#dashboard-loader")
    assert (loader["hx-trigger"], loader["aria-busy"]) == ("load", "true")
    assert shell.select_one(f'script[src="{static_assets().url("vendor/uplot-1.6.32/uPlot.iife.min.js")}"]')
    assert shell.select_one(f'script[type="module"][src="{static_assets().url("js/analytics.js")}"]')
    assert_no_inline_script_but_the_import_map(page, "/analytics")  # strict CSP: only the hashed import map
    assert shell.select_one('input[value="30"][checked]')


def test_figures_kpis_breakdowns_and_top_lists(world: World) -> None:
    p = partnership(world)
    _uses(world, p, p.partner.id, 3, country="GB")
    _uses(world, p, p.partner.id, 1, country="FR", browser="Firefox", lms="canvas")
    common = {"owner_org": str(p.operator.id), "partner_org": str(p.partner.id), "file_id": p.notes["id"]}
    world.services.warehouse.insert(
        [
            event("load_ok", ts=DAY, load_ms=200, **common),
            event("load_fail", ts=DAY, error_class="network", **common),
            event("download", ts=DAY, bytes=4096, **common),
        ]
    )
    response = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX)
    assert response.status_code == 200
    html = response.text
    board = parse_html(html)
    assert not board.is_full_document()
    assert board.select_one("#dashboard")
    kpis = _kpis(html)
    assert kpis["views"] == "4"
    assert kpis["viewers"] == "4"
    assert kpis["fails"] == "1"
    assert "50% of 2 loads" in html
    assert kpis["downloads"] == "1"
    assert kpis["bytes"] == "4.0 KB"
    assert kpis["load"] == "200 ms"
    series = _series(html)
    assert len(series["t"]) == 31
    assert sum(series["views"]) == 4
    assert sum(series["fails"]) == 1
    # Breakdown bars drill down; the partner's name, the file's and folder's names and links are shown.
    assert board.select_one('a[href="/analytics?days=custom&from=2026-03-01&to=2026-03-31&country=GB"]')
    assert board.select_one('[data-region="GB"]')
    assert "University" in html
    assert board.select_one(f'a[href="/files/{p.notes["id"]}"]')
    assert "notes.txt" in html
    assert text_of(board.one(f'a[href="/library/{p.course["id"]}"]')) == "Course"
    assert board.select_one(f'[data-drill="{p.notes["id"]}"]')


def test_filters_narrow_the_figures_and_show_as_chips(world: World) -> None:
    p = partnership(world)
    _uses(world, p, p.partner.id, 3, country="GB")
    _uses(world, p, p.partner.id, 2, country="FR")
    response = p.publisher.client.get(f"/analytics?{MARCH}&country=fr", headers=HTMX)
    assert response.status_code == 200
    assert _kpis(response.text)["views"] == "2"
    assert parse_html(response).select_one(".chip")
    assert parse_html(response).select_one('[data-region="FR"]')
    assert response.headers["HX-Push-Url"] == "/analytics?days=custom&from=2026-03-01&to=2026-03-31&country=FR"
    by_file = p.publisher.client.get(f"/analytics?{MARCH}&file={p.notes['id']}&lms=moodle", headers=HTMX)
    assert _kpis(by_file.text)["views"] == "5"
    assert "notes.txt" in by_file.text
    assert parse_html(by_file).select_one(f'[name="file"][value="{p.notes["id"]}"]')
    first_load = p.publisher.client.get(f"/analytics?{MARCH}", headers={**HTMX, "HX-Trigger": "dashboard-loader"})
    assert "HX-Push-Url" not in first_load.headers


def test_presets_cover_the_last_days(world: World) -> None:
    p = partnership(world)
    now = utcnow()
    _uses(world, p, p.partner.id, 1, ts=now - timedelta(days=2))
    _uses(world, p, p.partner.id, 1, ts=now - timedelta(days=20))
    _uses(world, p, p.partner.id, 1, ts=now - timedelta(days=60))
    seen = {
        days: _kpis(p.publisher.client.get(f"/analytics?days={days}", headers=HTMX).text)["views"]
        for days in ("7", "30", "90")
    }
    assert seen == {"7": "1", "30": "2", "90": "3"}


def test_empty_state(world: World) -> None:
    p = partnership(world)
    response = p.publisher.client.get("/analytics", headers=HTMX)
    assert response.status_code == 200
    assert "No usage in this period" in response.text
    assert parse_html(response).select_one("[data-timeseries]") is None
    filtered = p.publisher.client.get("/analytics?country=NZ", headers=HTMX)
    assert "No usage matches these filters" in filtered.text
    assert "Clear the filters" in filtered.text


def test_a_partner_sees_only_its_own_usage(world: World) -> None:
    p = partnership(world)
    other = world.org("college", OrgKind.PARTNER)
    assert grant(p.publisher, p.course["id"], other.id).status_code == 201
    _uses(world, p, p.partner.id, 2, country="GB")
    _uses(world, p, other.id, 5, country="DE")
    mine = p.student.client.get(f"/analytics?{MARCH}", headers=HTMX)
    assert mine.status_code == 200
    assert _kpis(mine.text)["views"] == "2"
    assert parse_html(mine).select_one('[data-region="DE"]') is None
    assert "College" not in mine.text
    # Naming the other partner in a filter does not reveal its usage either.
    theirs = p.student.client.get(f"/analytics?{MARCH}&partner={other.id}", headers=HTMX)
    assert "No usage matches these filters" in theirs.text
    assert "College" not in theirs.text
    publisher = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX)
    assert _kpis(publisher.text)["views"] == "7"
    assert "College" in publisher.text
    assert "University" in publisher.text


def test_signed_out_visitors_are_sent_to_sign_in(world: World) -> None:
    client = TestClient(world.app, base_url="http://testserver")
    page = client.get("/analytics?days=7", headers=HTML, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fanalytics%3Fdays%3D7"
    fragment = client.get("/analytics", headers=HTMX, follow_redirects=False)
    assert fragment.status_code == 401
    assert fragment.headers["HX-Redirect"].startswith("/login")


def test_someone_without_an_organisation_gets_a_clear_page(world: World) -> None:
    with unit_of_work(world.services.write_sessions) as db:
        partners.create_user(db, email="loner@example.test", password=PASSWORD)
    client = TestClient(world.app, base_url="http://testserver")
    assert client.post("/api/v1/auth/login", json={"email": "loner@example.test", "password": PASSWORD}).is_success
    page = client.get("/analytics", headers=HTML)
    assert page.status_code == 404
    assert "not a member of any organisation" in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("days=5", "`days` is one of"),
        ("from=yesterday", "`from` is not a date"),
        ("from=2026-03-10&to=2026-03-01", "first day is after the last day"),
        ("from=2020-01-01&to=2026-01-01", "at most"),
        ("partner=acme", "`partner` must be an id"),
        ("country=GBR", "two-letter country code"),
        ("device=fridge", "`device` is one of"),
        ("lms=blackboard", "`lms` is one of"),
        ("course=" + "x" * 300, "`course` is too long"),
        ("colour=blue", "Unknown parameter `colour`"),
        ("days=today&compare=maybe", "`compare` is 1"),
    ],
)
def test_bad_input_is_a_clear_422(world: World, query: str, message: str) -> None:
    member = world.member(world.org(), Role.VIEWER)
    page = member.client.get(f"/analytics?{query}", headers=HTML)
    assert page.status_code == 422
    assert message in page.text
    fragment = member.client.get(f"/analytics?{query}", headers=HTMX)
    assert fragment.status_code == 422
    assert fragment.headers["content-type"].startswith("application/problem+json")
    assert message in fragment.json()["detail"]


def test_a_viewer_sees_the_nav_link_and_the_file_page_links_to_usage(world: World) -> None:
    p = partnership(world)
    viewer = world.member(p.operator, Role.VIEWER)
    page = viewer.client.get(f"/files/{p.notes['id']}", headers=HTML)
    assert page.status_code == 200
    assert parse_html(page).select_one('a[href="/analytics"]')
    assert parse_html(page).select_one(f'a[href="/analytics/files/{p.notes["id"]}"]')


def test_uplot_is_vendored_with_its_licence(app_client: TestClient) -> None:
    for path in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE"):
        assert app_client.get(f"/static/vendor/uplot-1.6.32/{path}").status_code == 200
    assert app_client.get("/static/js/analytics.js").status_code == 200
    assert app_client.get("/static/css/analytics.css").status_code == 200
