"""A file's and a folder's performance pages and their JSON: figures, scope, names, CSV, permissions, bad input.

Each test runs twice: SQLite with the DuckDB warehouse, and PostgreSQL with the PostgreSQL warehouse.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from studyshelf.analytics.insight import MIN_VIEWS_TO_RANK
from studyshelf.core.db import unit_of_work
from studyshelf.library.models import FileVersion
from studyshelf.partners.models import OrgKind, Role
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from tests.analytics.support import event
from tests.conftest import World, make_settings
from tests.contracts.test_warehouse import pg_warehouse_url
from tests.html import Page, attr, parse_html, text_of
from tests.library.support import make_folder, uploaded
from tests.links.support import create_link
from tests.sharing.support import Partnership, grant, partnership

HTML = {"Accept": "text/html,application/xhtml+xml"}
TABLES = {**HTML, "HX-Request": "true", "HX-Trigger": "insight-loader"}  # as htmx asks for the loader's fragment
MARCH = "from=2026-03-01&to=2026-03-31"
DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SAFARI_IOS: dict[str, Any] = {"browser": "Mobile Safari", "browser_major": "17", "os": "iOS", "device": "mobile"}


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Iterator[Settings]:
    """SQLite with DuckDB, PostgreSQL with the PostgreSQL warehouse."""
    if not db_url.startswith("postgresql"):
        yield make_settings(tmp_path, db_url)
        return
    for url in pg_warehouse_url():
        yield make_settings(tmp_path, db_url, warehouse_url=url)


def _version_id(world: World, file_id: str) -> str:
    with unit_of_work(world.services.write_sessions) as db:
        return str(db.scalar(select(FileVersion.id).where(FileVersion.file_id == uuid.UUID(file_id))))


def _common(
    world: World, p: Partnership, org: uuid.UUID, file: dict[str, Any], folder: dict[str, Any]
) -> dict[str, Any]:
    """The fields of events about a file of the publisher's, used by `org`."""
    return {
        "owner_org": str(p.operator.id),
        "partner_org": str(org),
        "file_id": file["id"],
        "version_id": _version_id(world, file["id"]),
        "folder_id": folder["id"],
        "folder_path": (str(p.publisher.root_folder_id), folder["id"]),
        "category": "video",
        "extension": "mp4",
    }


def _safari_fails(world: World, p: Partnership, *, link: str = "", n: int = 30, org: uuid.UUID | None = None) -> None:
    """n views of the notes: Safari 17 on iOS fails to decode a third of them; Chrome loads the rest in 120 ms."""
    common = _common(world, p, org or p.partner.id, p.notes, p.course)
    events = []
    for i in range(n):
        safari = i % 3 == 0
        audience = SAFARI_IOS if safari else {}
        events.append(event("view", ts=DAY, viewer=f"v{i}", link_id=link or None, **audience, **common))
        if safari:
            events.append(event("load_fail", ts=DAY, error_class="decode", **audience, **common))
        else:
            events.append(event("load_ok", ts=DAY, load_ms=120, **common))
    world.services.warehouse.insert(events)


def _api(p: Partnership, kind: str, target: str, params: str = MARCH, *, org: uuid.UUID | None = None) -> Any:
    org_id = org or p.operator.id
    return p.publisher.client.get(f"/api/v1/analytics/{kind}s/{target}?org_id={org_id}&{params}")


def _tables(p: Partnership, shell: Page) -> Page:
    """The tables the page's shell loads after its headline figures: its loader's fragment, as htmx fetches it."""
    fragment = p.publisher.client.get(attr(shell.one("#insight-loader"), "hx-get"), headers=TABLES)
    assert fragment.status_code == 200, fragment.text
    return parse_html(fragment)


def test_file_page_names_the_audience_that_fails(world: World) -> None:
    p = partnership(world)
    link = create_link(p.publisher, p.notes["id"], label="Week 3 reading")
    _safari_fails(world, p, link=link.json()["id"])
    page = p.publisher.client.get(f"/analytics/files/{p.notes['id']}?{MARCH}", headers=HTML)
    assert page.status_code == 200, page.text
    html = parse_html(page)
    assert text_of(html.one("h1")) == "notes.txt"
    kpis = {tile["data-kpi"]: text_of(tile.select_one(".kpi-value")) for tile in html.select("[data-kpi]")}
    assert (kpis["views"], kpis["fails"]) == ("30", "10")
    assert html.one("[data-insight-series]")
    assert not html.select('[data-table="failures"]')  # the tables come after the headline figures
    html = _tables(p, html)
    assert not html.select("h1, [data-kpi]")  # the fragment is the tables only
    first = [text_of(c) for c in html.one('[data-table="failures"] tbody tr').select("th, td")]
    assert first[:6] == ["Mobile Safari 17", "17", "iOS", "mobile", "GB", "Cannot decode"]
    assert first[6:] == ["10", "10", "100%"]
    versions = html.one('[data-table="versions"] tbody tr')
    assert "Version 1 (current)" in text_of(versions)
    assert "Week 3 reading" in text_of(html.one('[data-table="placements"]'))  # the link's label, not its id
    assert html.one('[data-figure="p50"]').get_text() == "120 ms"
    # Every table has its CSV, with the page's period.
    assert html.one('a[data-csv="failures"]')["href"].endswith(f"/failures.csv?days=custom&{MARCH}")


def test_the_api_gives_the_page_figures_and_matches_a_direct_query(world: World) -> None:
    p = partnership(world)
    _safari_fails(world, p)
    response = _api(p, "file", p.notes["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target"] == {"kind": "file", "id": p.notes["id"], "name": "notes.txt", "path": ["Library", "Course"]}
    assert body["from"] == "2026-03-01"
    failure = body["failures"][0]
    assert (failure["browser"], failure["browser_major"], failure["os"], failure["error_class"]) == (
        "Mobile Safari",
        "17",
        "iOS",
        "decode",
    )
    assert (failure["fails"], failure["attempts"], failure["fail_rate"]) == (10, 10, 1.0)
    assert {row["key"]: row["fails"] for row in body["by_browser"]} == {"Mobile Safari 17": 10, "Chrome 131": 0}
    assert body["by_error_class"] == [{"key": "decode", "attempts": 30, "fails": 10, "fail_rate": pytest.approx(1 / 3)}]
    assert sum(b["loads"] for b in body["load_times"]["histogram"]) == 20
    assert body["load_times"]["p50_ms"] == 120
    assert [v["number"] for v in body["versions"]] == [1]
    direct = world.services.warehouse.summary(
        SummaryQuery(
            start=datetime(2026, 3, 1, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
            scope_org=str(p.operator.id),
            filters={"file": p.notes["id"]},
        )
    )
    assert (body["totals"]["views"], body["totals"]["fails"]) == (direct.totals.views, direct.totals.fails)
    # A filter narrows every section, as on the dashboard.
    only_chrome = _api(p, "file", p.notes["id"], f"{MARCH}&browser=Chrome").json()
    assert (only_chrome["totals"]["views"], only_chrome["failures"]) == (20, [])


def test_the_csv_equals_the_table_and_is_formula_safe(world: World) -> None:
    p = partnership(world)
    _safari_fails(world, p)
    common = _common(world, p, p.partner.id, p.notes, p.course)
    world.services.warehouse.insert(
        [event("load_fail", ts=DAY, browser="=HYPERLINK(1)", error_class="network", **common)]
    )
    response = p.publisher.client.get(f"/analytics/files/{p.notes['id']}/failures.csv?{MARCH}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Browser", "Version", "OS", "Device", "Country", "Error", "Failed", "Loads", "Fail rate"]
    assert rows[1] == ["Mobile Safari 17", "17", "iOS", "mobile", "GB", "Cannot decode", "10", "10", "1.0"]
    assert rows[2][0] == "'=HYPERLINK(1) 131"
    page = _tables(p, parse_html(p.publisher.client.get(f"/analytics/files/{p.notes['id']}?{MARCH}", headers=HTML)))
    shown = page.one('[data-table="failures"] tbody').select("tr")
    assert len(shown) == len(rows) - 1
    assert p.publisher.client.get(f"/analytics/files/{p.notes['id']}/nonsense.csv?{MARCH}").status_code == 404


def test_folder_ranks_its_files_by_fail_rate_among_files_with_enough_views(world: World) -> None:
    p = partnership(world)
    _safari_fails(world, p, n=MIN_VIEWS_TO_RANK + 10)
    sub = make_folder(p.publisher, p.course["id"], "Week 1")
    rare = uploaded(p.publisher, sub["id"], "rare.txt", b"rarely opened")
    steady = uploaded(p.publisher, sub["id"], "steady.txt", b"always loads")
    for file, n, failing in ((rare, 3, True), (steady, MIN_VIEWS_TO_RANK, False)):
        common = _common(world, p, p.partner.id, file, sub)
        common["folder_path"] = (str(p.publisher.root_folder_id), p.course["id"], sub["id"])
        world.services.warehouse.insert(
            [event("view", ts=DAY, **common) for _ in range(n)]
            + [event("load_fail" if failing else "load_ok", ts=DAY, error_class="network" if failing else "", **common)]
        )
    body = _api(p, "folder", p.course["id"]).json()
    assert body["target"]["kind"] == "folder"
    assert body["totals"]["views"] == MIN_VIEWS_TO_RANK + 10 + 3 + MIN_VIEWS_TO_RANK
    assert [f["name"] for f in body["files"]] == ["notes.txt", "steady.txt"]  # rare.txt: too few views to rank
    assert body["versions"] == []
    page = _tables(p, parse_html(p.publisher.client.get(f"/analytics/folders/{p.course['id']}?{MARCH}", headers=HTML)))
    files = page.one('[data-table="files"]')
    assert "1 other file had fewer views" in text_of(files)
    assert page.one(f'[data-table="files"] a[href="/analytics/files/{p.notes["id"]}?days=custom&{MARCH}"]')
    # The subfolder alone: its two files.
    sub_body = _api(p, "folder", sub["id"]).json()
    assert sub_body["totals"]["views"] == 3 + MIN_VIEWS_TO_RANK


def test_a_partner_sees_only_its_own_usage_of_a_shared_file(world: World) -> None:
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    college = world.org("college", OrgKind.PARTNER)
    _safari_fails(world, p, n=9)
    _safari_fails(world, p, n=6, org=college.id)
    mine = p.teacher.client.get(f"/api/v1/analytics/files/{p.notes['id']}?org_id={p.partner.id}&{MARCH}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["totals"]["views"] == 9
    assert _api(p, "file", p.notes["id"]).json()["totals"]["views"] == 15  # the owner sees everyone's


def test_another_organisations_file_or_folder_is_not_found(world: World) -> None:
    p = partnership(world)
    stranger = world.member(world.org("elsewhere", OrgKind.PARTNER), Role.OWNER)
    for kind, target in (("file", p.notes["id"]), ("folder", p.course["id"]), ("file", str(uuid.uuid4()))):
        api = stranger.client.get(f"/api/v1/analytics/{kind}s/{target}?org_id={stranger.org_id}&{MARCH}")
        assert api.status_code == 404, api.text
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["type"].endswith("/not-found")
        page = stranger.client.get(f"/analytics/{kind}s/{target}?{MARCH}", headers=HTML)
        assert page.status_code == 404
        assert stranger.client.get(f"/analytics/{kind}s/{target}/series.csv?{MARCH}").status_code == 404
    # Asking for another organisation's figures is refused whatever the file.
    other_org = stranger.client.get(f"/api/v1/analytics/files/{p.notes['id']}?org_id={p.operator.id}&{MARCH}")
    assert other_org.status_code in {403, 404}
    assert p.publisher.client.get(f"/api/v1/analytics/files/{p.notes['id']}?{MARCH}").status_code == 422  # no org_id


@pytest.mark.parametrize(
    ("params", "says", "api_says"),
    [
        ("from=2026-03-31&to=2026-03-01", "after the last day", "after the last day"),
        ("from=2020-01-01&to=2026-03-01", "at most", "at most"),
        ("from=yesterday", "not a date", "not a date"),
        ("days=12", "`days` is one of", '"days"'),
        ("colour=red", "Unknown parameter `colour`", "Unknown parameter `colour`"),
        ("country=France", "two-letter", '"country"'),
        ("folder=not-an-id", "must be an id", '"folder"'),
    ],
)
def test_bad_input_is_a_clear_4xx(world: World, params: str, says: str, api_says: str) -> None:
    p = partnership(world)
    api = _api(p, "file", p.notes["id"], params)
    assert api.status_code == 422, api.text
    assert api.headers["content-type"] == "application/problem+json"
    assert api_says in api.text  # the API's own validation names the parameter
    page = p.publisher.client.get(f"/analytics/files/{p.notes['id']}?{params}", headers=HTML)
    assert page.status_code == 422
    assert says in page.text


def test_the_file_page_refuses_a_file_filter_and_rejects_bad_ids(world: World) -> None:
    p = partnership(world)
    response = _api(p, "file", p.notes["id"], f"{MARCH}&file={p.notes['id']}")
    assert response.status_code == 422
    assert p.publisher.client.get("/api/v1/analytics/files/nope?org_id=" + str(p.operator.id)).status_code == 422
    assert p.publisher.client.get("/analytics/folders/nope", headers=HTML).status_code == 422


def test_an_empty_period_says_so(world: World) -> None:
    p = partnership(world)
    page = p.publisher.client.get(f"/analytics/files/{p.notes['id']}?{MARCH}", headers=HTML)
    assert page.status_code == 200
    assert "No usage in this period" in page.text
    body = _api(p, "file", p.notes["id"]).json()
    assert body["totals"]["views"] == 0
    assert body["failures"] == []


def test_the_file_page_and_the_library_link_to_the_performance_page(world: World) -> None:
    p = partnership(world)
    file_page = parse_html(p.publisher.client.get(f"/files/{p.notes['id']}", headers=HTML))
    assert file_page.one("[data-usage-link]")["href"] == f"/analytics/files/{p.notes['id']}"
    listing = parse_html(p.publisher.client.get(f"/library/{p.course['id']}", headers=HTML))
    assert listing.one(f'a[href="/analytics/files/{p.notes["id"]}"]')
    root = parse_html(p.publisher.client.get(f"/library/{p.publisher.root_folder_id}", headers=HTML))
    assert root.one(f'a[href="/analytics/folders/{p.course["id"]}"]')


def test_the_openapi_documents_the_endpoints(world: World) -> None:
    spec = partnership(world).publisher.client.get("/api/openapi.json").json()
    for path in ("/api/v1/analytics/files/{file_id}", "/api/v1/analytics/folders/{folder_id}"):
        operation = spec["paths"][path]["get"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("InsightRead")
        assert "404" in operation["responses"]
