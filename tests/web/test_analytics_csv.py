"""Every table on /analytics as CSV: the same rows and figures as the screen, formula-safe, bad tables refused."""

from __future__ import annotations

import csv
import io
import uuid

from studyshelf.analytics.table_csv import TABLES
from tests.conftest import World
from tests.html import attr, parse_html
from tests.sharing.support import grant, partnership
from tests.web.test_analytics_pages import HTMX, MARCH, _uses

CSV = "/analytics/table.csv"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_each_table_on_screen_downloads_as_csv_with_the_screen_figures(world: World) -> None:
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    _uses(world, p, p.partner.id, 5, country="FR", browser="Firefox")
    _uses(world, p, p.operator.id, 2, country="DE", browser="=HYPERLINK(1)")
    board = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX)
    page = parse_html(board.text)
    links = {attr(a, "data-csv"): attr(a, "href") for a in page.select("a[data-csv]")}
    assert {"totals", "series", "files", "folders", "country", "browser", "partner"} <= set(links)
    assert set(links) <= set(TABLES)

    countries = p.publisher.client.get(links["country"])
    assert countries.status_code == 200
    assert countries.headers["content-type"].startswith("text/csv")
    assert (
        'filename="studyshelf-publisher-country-2026-03-01-2026-03-31.csv"' in countries.headers["content-disposition"]
    )
    assert [(r["country"], r["views"]) for r in _rows(countries.text)] == [("FR", "5"), ("DE", "2")]
    for code, views in (("FR", "5"), ("DE", "2")):  # the map's table shows the same
        assert f"{code}: {views} views" in board.text

    browsers = _rows(p.publisher.client.get(links["browser"]).text)
    assert {r["name"] for r in browsers} == {"Firefox", "'=HYPERLINK(1)"}  # never run as a formula
    partners = {r["name"]: r["views"] for r in _rows(p.publisher.client.get(links["partner"]).text)}
    assert partners == {"University": "5", "Publisher (you)": "2"}  # organisations by name
    files = _rows(p.publisher.client.get(links["files"]).text)
    assert [(r["id"], r["name"], r["views"]) for r in files] == [(p.notes["id"], "notes.txt", "7")]
    totals = _rows(p.publisher.client.get(links["totals"]).text)
    assert totals == [{**totals[0], "from": "2026-03-01", "to": "2026-03-31", "views": "7", "viewers": "7"}]
    series = _rows(p.publisher.client.get(links["series"]).text)
    assert sum(int(r["views"]) for r in series) == 7
    assert next(iter(series[0])) == "day_start"


def test_filters_apply_and_bad_tables_are_refused(world: World) -> None:
    p = partnership(world)
    _uses(world, p, p.operator.id, 3, country="DE")
    _uses(world, p, p.operator.id, 1, country="FR")
    client = p.publisher.client
    filtered = _rows(client.get(f"{CSV}?{MARCH}&country=FR&table=totals").text)
    assert filtered[0]["views"] == "1"
    unknown = client.get(f"{CSV}?{MARCH}&table=secrets")
    assert unknown.status_code == 422
    assert "`table` is one of" in unknown.text
    assert client.get(f"{CSV}?{MARCH}").status_code == 422
    assert client.get(f"{CSV}?from=2026-03-31&to=2026-03-01&table=totals").status_code == 422
    assert client.get(f"{CSV}?{MARCH}&partner={uuid.uuid4().hex[:5]}&table=totals").status_code == 422
    outsider = world.member(world.org("elsewhere"))
    assert _rows(outsider.client.get(f"{CSV}?{MARCH}&table=totals").text)[0]["views"] == "0"
