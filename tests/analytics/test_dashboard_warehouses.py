"""The dashboard's comparison and live panel on each warehouse (DuckDB and PostgreSQL): the page's figures are
those of direct warehouse queries for the period, the previous period and the last half hour."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studyshelf.analytics import service
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from tests.analytics.support import event
from tests.conftest import World, make_settings
from tests.contracts.test_warehouse import pg_warehouse_url
from tests.html import parse_html, text_of
from tests.sharing.support import Partnership, partnership

HTMX = {"HX-Request": "true"}
MARCH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
BEFORE = (datetime(2026, 1, 29, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))  # the 31 days before March


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    else:
        yield from pg_warehouse_url()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, warehouse_url: str) -> Settings:
    return make_settings(tmp_path, db_url, warehouse_url=warehouse_url)


def _traffic(world: World, p: Partnership, *, start: datetime, days: int, seed: int) -> None:
    """Views, loads and fails over `days` days, by country, for the operator's file used by its partner."""
    common: dict[str, Any] = {
        "owner_org": str(p.operator.id),
        "partner_org": str(p.partner.id),
        "file_id": p.notes["id"],
        "folder_id": p.course["id"],
        "folder_path": (str(p.publisher.root_folder_id), p.course["id"]),
    }
    events = []
    for i in range(seed * 7):
        ts = start + timedelta(days=i % days, hours=i % 13)
        country = ("GB", "FR", "DE")[i % 3]
        events.append(event("view", ts=ts, country=country, viewer=f"v{i % (seed + 2)}", **common))
        if i % 4 == 0:
            events.append(event("load_fail", ts=ts, country=country, error_class="decode", **common))
        elif i % 2 == 0:
            events.append(event("load_ok", ts=ts, country=country, load_ms=100 + i, **common))
    world.services.warehouse.insert(events)


def _direct(world: World, p: Partnership, window: tuple[datetime, datetime], **filters: str) -> Any:
    query = SummaryQuery(start=window[0], end=window[1], scope_org=str(p.operator.id), filters=filters)
    return world.services.warehouse.summary(query).totals


def _kpi(board: Any, key: str) -> str:
    return text_of(board.one(f'[data-kpi="{key}"] .kpi-value'))


def _change(board: Any, key: str) -> str:
    return text_of(board.one(f'[data-change="{key}"] .kpi-change-text'))


@pytest.mark.parametrize("filters", ["", "&country=GB"])
def test_comparison_figures_are_two_direct_queries(world: World, filters: str) -> None:
    p = partnership(world)
    _traffic(world, p, start=MARCH[0], days=31, seed=5)
    _traffic(world, p, start=BEFORE[0], days=31, seed=3)
    board = parse_html(p.publisher.client.get(f"/analytics?from=2026-03-01&to=2026-03-31{filters}", headers=HTMX))
    country = {"country": "GB"} if filters else {}
    now, before = _direct(world, p, MARCH, **country), _direct(world, p, BEFORE, **country)
    assert before.views  # there is something to compare with
    assert _kpi(board, "views") == f"{now.views:,}"
    assert _kpi(board, "fails") == f"{now.fails:,}"
    delta = now.views - before.views
    assert _change(board, "views") == f"{delta:+,} ({delta * 100 / before.views:+.0f}%)"
    fails = now.fails - before.fails
    assert _change(board, "fails") == f"{fails:+,} ({fails * 100 / before.fails:+.0f}%)"


def test_the_live_panel_is_a_direct_query_of_the_last_half_hour(world: World) -> None:
    p = partnership(world)
    now = world.services.clock.now()
    _traffic(world, p, start=now - timedelta(minutes=20), days=1, seed=2)
    _traffic(world, p, start=now - timedelta(hours=2), days=1, seed=1)  # before the half hour
    html = p.publisher.client.get("/analytics/live?country=FR", headers=HTMX)
    assert html.status_code == 200
    panel = parse_html(html)
    query = service.live_query(org_id=uuid.UUID(str(p.operator.id)), filters={"country": "FR"}, now=now)
    direct = world.services.warehouse.summary(query)
    assert direct.totals.views
    assert text_of(panel.one('[data-live="views"] dd')) == f"{direct.totals.views:,}"
    assert text_of(panel.one('[data-live="fails"] dd')) == f"{direct.totals.fails:,}"
    assert text_of(panel.one('[data-live="viewers"] dd')) == f"{direct.totals.viewers:,}"
    rows = panel.select(".live-table tbody tr")
    assert sum(int(text_of(row.select("td")[1])) for row in rows) == direct.totals.views
