"""The dashboard's comparison, world map, live panel, presets and time zone (issue 18, points 2–5)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from studyshelf.analytics.dashboard import parse_query
from studyshelf.analytics.map_regions import MAP_REGIONS
from studyshelf.analytics.reports.models import ReportSettings
from studyshelf.analytics.trends import change
from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Invalid
from studyshelf.partners.models import OrgKind
from tests.analytics.support import event
from tests.conftest import World
from tests.html import attr, parse_html, text_of
from tests.sharing.support import Partnership, grant, partnership

HTMX = {"HX-Request": "true"}
MARCH = "from=2026-03-01&to=2026-03-31"  # its previous period: 29 January – 28 February
IN_MARCH = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
IN_FEBRUARY = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
GONE_FILE = str(uuid.UUID(int=77))


def _uses(world: World, p: Partnership, n: int, *, ts: datetime, **fields: Any) -> None:
    common = {
        "owner_org": str(p.operator.id),
        "partner_org": str(p.partner.id),
        "file_id": p.notes["id"],
        "folder_id": p.course["id"],
        "folder_path": (str(p.publisher.root_folder_id), p.course["id"]),
        "category": "text",
        "extension": "txt",
    }
    world.services.warehouse.insert(
        [event("view", ts=ts, viewer=uuid.uuid4().hex, **{**common, **fields}) for _ in range(n)]
    )


def _change(html: str, key: str) -> str | None:
    found = parse_html(html).select_one(f'[data-change="{key}"] .kpi-change-text')
    return None if found is None else text_of(found)


def test_headline_figures_show_the_change_against_the_previous_period(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 4, ts=IN_MARCH, country="GB")
    _uses(world, p, 2, ts=IN_FEBRUARY, country="GB")
    world.services.warehouse.insert(
        [event("load_fail", ts=IN_FEBRUARY, owner_org=str(p.operator.id), file_id=p.notes["id"], error_class="network")]
    )
    html = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX).text
    assert _change(html, "views") == "+2 (+100%)"
    assert _change(html, "viewers") == "+2 (+100%)"
    assert _change(html, "fails") == "-1 (-100%)"
    assert "kpi-change-good" in attr(parse_html(html).one('[data-change="fails"]'), "class")
    assert "29 Jan – 28 Feb 2026" in text_of(parse_html(html).one("[data-compare-note]"))


def test_an_empty_previous_period_is_said_in_neutral_words(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 3, ts=IN_MARCH)
    html = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX).text
    assert parse_html(html).select_one("[data-change]") is None
    assert "nothing to compare with" in text_of(parse_html(html).one("[data-compare-note]"))
    assert parse_html(html).select_one(".movers-card") is None


def test_the_series_overlays_the_previous_period_when_asked_and_the_url_keeps_it(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 4, ts=IN_MARCH)
    _uses(world, p, 2, ts=IN_FEBRUARY)
    plain = p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX)
    series = json.loads(parse_html(plain).attr("[data-timeseries]", "data-timeseries"))
    assert "previous" not in series
    toggle = parse_html(plain).one("[data-compare-toggle]")
    assert attr(toggle, "href") == f"/analytics?days=custom&{MARCH}&compare=1"
    compared = p.publisher.client.get(f"/analytics?{MARCH}&compare=1", headers=HTMX)
    assert compared.headers["HX-Push-Url"] == f"/analytics?days=custom&{MARCH}&compare=1"
    series = json.loads(parse_html(compared).attr("[data-timeseries]", "data-timeseries"))
    assert len(series["previous"]) == len(series["t"]) == 31
    assert sum(series["previous"]) == 2
    assert series["previous"][12] == 2  # 10 February is the 13th day of 29 January – 28 February
    # Drill-downs and the filter form keep the overlay.
    assert parse_html(compared).one('input[name="compare"]')["value"] == "1"
    assert "compare=1" in attr(parse_html(compared).one('[data-map] a[data-country="GB"]'), "href")
    bad = p.publisher.client.get(f"/analytics?{MARCH}&compare=yes", headers=HTMX)
    assert bad.status_code == 422
    assert "`compare`" in bad.json()["detail"]


def test_top_files_show_rising_and_falling_entries(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 5, ts=IN_MARCH)
    _uses(world, p, 2, ts=IN_FEBRUARY)
    _uses(world, p, 3, ts=IN_FEBRUARY, file_id=GONE_FILE)
    _uses(world, p, 1, ts=IN_MARCH, file_id=GONE_FILE)
    board = parse_html(p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX))
    rising = board.one('[data-movers="rising"]').select("li[data-key]")
    falling = board.one('[data-movers="falling"]').select("li[data-key]")
    assert [(attr(li, "data-key"), text_of(li.select_one(".mover-change"))) for li in rising] == [
        (p.notes["id"], "+3 (+150%)")
    ]
    assert [(attr(li, "data-key"), text_of(li.select_one(".mover-change"))) for li in falling] == [
        (GONE_FILE, "-2 (-67%)")
    ]
    assert rising[0].select_one(f'a[href="/files/{p.notes["id"]}"]')
    assert "Unavailable file" in text_of(falling[0])


def test_the_world_map_shades_countries_and_a_country_filters_the_page(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 8, ts=IN_MARCH, country="GB")
    _uses(world, p, 1, ts=IN_MARCH, country="FR")
    _uses(world, p, 2, ts=IN_MARCH, country="SG")  # too small for the 1:110m map: in the table only
    _uses(world, p, 1, ts=IN_MARCH, country="")
    world.services.warehouse.insert(
        [event("load_fail", ts=IN_MARCH, owner_org=str(p.operator.id), country="FR", error_class="decode")]
    )
    assert "SG" not in MAP_REGIONS
    assert {"GB", "FR"} <= MAP_REGIONS
    board = parse_html(p.publisher.client.get(f"/analytics?{MARCH}", headers=HTMX))
    card = board.one("[data-map]")
    drawn = {attr(a, "data-country"): a for a in card.select(".world-map a[data-country]")}
    assert set(drawn) == {"GB", "FR"}
    assert attr(drawn["GB"], "href") == f"/analytics?days=custom&{MARCH}&country=GB"
    gb_shape = drawn["GB"].select_one("use")
    assert attr(gb_shape, "href").endswith("#GB")
    assert "v5" in attr(gb_shape, "class")
    assert "f0" in attr(gb_shape, "class")  # no loads reported
    assert "f5" in attr(drawn["FR"].select_one("use"), "class")  # every load failed
    table = [attr(tr, "data-key") for tr in card.select("[data-map-table] tbody tr")]
    assert table == ["GB", "SG", "FR"]
    assert card.select_one(f'[data-map-table] a[hx-get="/analytics?days=custom&{MARCH}&country=SG"]')
    # Filtered to one country, it is drawn as chosen, not as a link to itself; the figures follow the filter.
    only_gb = parse_html(p.publisher.client.get(f"/analytics?{MARCH}&country=GB", headers=HTMX))
    assert only_gb.select_one('.world-map g.map-selected[data-country="GB"]')
    assert only_gb.select_one('.world-map a[data-country="GB"]') is None
    assert text_of(only_gb.one('[data-kpi="views"] .kpi-value')) == "8"


def test_the_map_geometry_is_vendored_with_its_licence(world: World) -> None:
    client = world.member(world.org()).client
    svg = client.get("/static/img/world-map.svg")
    assert svg.status_code == 200
    assert '<path id="GB"' in svg.text
    assert '<g id="world">' in svg.text
    for path in ("vendor/world-atlas-2.0.2/LICENSE", "vendor/i18n-iso-countries-7.14.0/LICENSE"):
        assert client.get(f"/static/{path}").status_code == 200


def _live(world: World, p: Partnership, query: str = "") -> Any:
    response = p.publisher.client.get(f"/analytics/live{query}", headers=HTMX)
    assert response.status_code == 200
    return parse_html(response)


def _live_figure(panel: Any, key: str) -> str:
    return text_of(panel.one(f'[data-live="{key}"] dd'))


def test_the_live_panel_counts_the_last_half_hour_by_minute(world: World) -> None:
    p = partnership(world)
    now = world.services.clock.now()
    _uses(world, p, 3, ts=now - timedelta(minutes=2), country="GB")
    _uses(world, p, 1, ts=now - timedelta(minutes=2), country="FR", file_id=GONE_FILE)
    _uses(world, p, 5, ts=now - timedelta(minutes=45), country="GB")  # too long ago
    world.services.warehouse.insert(
        [event("load_fail", ts=now - timedelta(minutes=1), owner_org=str(p.operator.id), file_id=p.notes["id"])]
    )
    panel = _live(world, p)
    assert (_live_figure(panel, "views"), _live_figure(panel, "fails"), _live_figure(panel, "viewers")) == (
        "4",
        "1",
        "4",
    )
    assert len(panel.select(".live-table tbody tr")) == 30
    assert len(panel.select(".live-bar")) == 30
    files = [attr(li, "data-live-file") for li in panel.select("[data-live-file]")]
    assert files == [p.notes["id"], GONE_FILE]
    assert panel.select_one(f'[data-live-file="{p.notes["id"]}"] a[href="/files/{p.notes["id"]}"]')
    section = panel.one("#live-panel")
    assert (section["hx-trigger"], section["hx-push-url"], section["hx-get"]) == (
        "every 10s",
        "false",
        "/analytics/live",
    )
    # The page's filters apply; the period does not.
    only_gb = _live(world, p, "?country=GB&days=7")
    assert _live_figure(only_gb, "views") == "3"
    assert only_gb.one("#live-panel")["hx-get"] == "/analytics/live?country=GB"


def test_the_live_panel_is_scoped_checked_and_loaded_by_the_page(world: World) -> None:
    p = partnership(world)
    other = world.org("college", OrgKind.PARTNER)
    assert grant(p.publisher, p.course["id"], other.id).status_code == 201
    now = world.services.clock.now()
    _uses(world, p, 2, ts=now - timedelta(minutes=3))
    _uses(world, p, 4, ts=now - timedelta(minutes=3), partner_org=str(other.id))
    mine = p.student.client.get("/analytics/live", headers=HTMX)
    assert _live_figure(parse_html(mine), "views") == "2"
    assert p.student.client.get("/analytics/live?country=GBR", headers=HTMX).status_code == 422
    shell = parse_html(p.publisher.client.get("/analytics", headers={"Accept": "text/html"}))
    loader = shell.one("#live-panel")
    assert (loader["hx-trigger"], loader["hx-get"]) == ("load", "/analytics/live")


def _set_time_zone(world: World, org_id: uuid.UUID, tz: str) -> None:
    with unit_of_work(world.services.write_sessions) as db:
        db.add(ReportSettings(org_id=org_id, time_zone=tz, emails="", webhook_url=""))


def test_today_is_a_day_of_the_organisations_time_zone(world: World) -> None:
    p = partnership(world)
    tz = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its day and UTC's differ for most of the day
    _set_time_zone(world, p.operator.id, "Pacific/Kiritimati")
    now = world.services.clock.now()
    midnight = datetime.combine(now.astimezone(tz).date(), time(), tz)
    _uses(world, p, 1, ts=max(midnight, now - timedelta(minutes=1)))
    _uses(world, p, 2, ts=midnight - timedelta(hours=1))  # yesterday there
    response = p.publisher.client.get("/analytics?days=today", headers=HTMX)
    board = parse_html(response)
    assert text_of(board.one('[data-kpi="views"] .kpi-value')) == "1"
    assert _change(response.text, "views") == "-1 (-50%)"
    assert "Pacific/Kiritimati" in text_of(board.one(".range-text"))
    assert board.one('input[name="days"][value="today"]').has_attr("checked")
    series = json.loads(board.attr("[data-timeseries]", "data-timeseries"))
    assert (series["bucket"], series["tz"], len(series["t"])) == ("hour", "Pacific/Kiritimati", 24)
    assert series["t"][0] == int(midnight.timestamp())


@pytest.mark.parametrize(
    ("days", "start", "end"),
    [
        ("today", date(2026, 3, 15), date(2026, 3, 15)),
        ("7", date(2026, 3, 9), date(2026, 3, 15)),
        ("month", date(2026, 3, 1), date(2026, 3, 15)),
        ("last-month", date(2026, 2, 1), date(2026, 2, 28)),
    ],
)
def test_presets(days: str, start: date, end: date) -> None:
    query = parse_query({"days": days}, today=date(2026, 3, 15), tz="Europe/Paris")
    assert (query.start, query.end, query.tz) == (start, end, "Europe/Paris")
    assert query.url() == f"/analytics?days={days}"
    previous = query.previous()
    assert previous.end == start - timedelta(days=1)
    assert previous.days == query.days


def test_last_month_in_january_is_december() -> None:
    query = parse_query({"days": "last-month"}, today=date(2027, 1, 1))
    assert (query.start, query.end) == (date(2026, 12, 1), date(2026, 12, 31))


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(Invalid, match="today, 7, 30, 90, month, last-month, custom"):
        parse_query({"days": "week"}, today=date(2026, 3, 15))


def test_utc_is_the_default_time_zone(world: World) -> None:
    p = partnership(world)
    _uses(world, p, 1, ts=utcnow() - timedelta(minutes=5))
    board = parse_html(p.publisher.client.get("/analytics?days=today", headers=HTMX))
    assert "UTC" in text_of(board.one(".range-text"))


def test_the_committed_map_is_what_the_script_makes_of_the_vendored_geometry() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "world_map.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)  # noqa: S603 - our own script
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("now", "before", "text", "tone"),
    [
        (12, 6, "+6 (+100%)", "good"),
        (3, 4, "-1 (-25%)", "bad"),
        (5, 5, "no change", "flat"),
        (2, 0, "+2 (none before)", "good"),
        (None, 200.0, "none now", ""),
        (150.0, None, "none before", ""),
    ],
)
def test_a_change_reads_as_absolute_and_relative(now: float | None, before: float | None, text: str, tone: str) -> None:
    found = change(now, before)
    assert (found.text, found.tone) == (text, tone)


def test_fewer_fails_and_faster_loads_are_good() -> None:
    assert change(1, 3, higher_is_good=False).tone == "good"
    assert change(2048, 1024, shown=lambda v: f"{v / 1024:.0f} KB").text == "+1 KB (+100%)"
