"""Filter invariants, property-based: a filter never adds usage, and a breakdown adds up to the total.

(Plausible once showed more pageviews with a region filter than without; field-facts pitfall 29.)
Every property runs against both warehouses: DuckDB in memory and PostgreSQL in a throwaway schema;
one warehouse per module and backend, emptied before each example.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyshelf.events import Event
from studyshelf.warehouse import DIMENSIONS, Metrics, SummaryQuery, Warehouse, build_warehouse
from tests.analytics.support import T0, event
from tests.contracts.test_warehouse import pg_warehouse_url

ORGS = [str(uuid.UUID(int=i)) for i in (1, 2, 3)]
FOLDERS = [str(uuid.UUID(int=i)) for i in (20, 21, 22, 23)]
PATHS = [(FOLDERS[0],), (FOLDERS[0], FOLDERS[1]), (FOLDERS[0], FOLDERS[1], FOLDERS[2]), (FOLDERS[0], FOLDERS[3])]
FILES = [str(uuid.UUID(int=i)) for i in (100, 101, 102)]
VALUES: dict[str, list[str]] = {
    "partner": ORGS,
    "owner": ORGS[:2],
    "file": FILES,
    "folder": FOLDERS,
    "country": ["GB", "DE", ""],
    "browser": ["Chrome", "Firefox", "Moodle app"],
    "os": ["Windows", "iOS"],
    "device": ["desktop", "mobile", "bot"],
    "category": ["pdf", "video"],
    "extension": ["pdf", "mp4"],
    "lms": ["moodle", "canvas", "none"],
    "course": ["", "c1"],
    "type": ["view", "load_ok", "load_fail", "download", "blocked", "transfer"],
}
ADDITIVE = ("views", "load_ok", "fails", "downloads", "blocked", "bytes")


@st.composite
def events(draw: st.DrawFn) -> Event:
    path = draw(st.sampled_from(PATHS))
    return event(
        draw(st.sampled_from(VALUES["type"])),
        ts=T0 + timedelta(hours=draw(st.integers(0, 24 * 5))),
        owner_org=draw(st.sampled_from(VALUES["owner"])),
        partner_org=draw(st.sampled_from(ORGS)),
        file_id=draw(st.sampled_from(FILES)),
        folder_id=path[-1],
        folder_path=path,
        country=draw(st.sampled_from(VALUES["country"])),
        browser=draw(st.sampled_from(VALUES["browser"])),
        os=draw(st.sampled_from(VALUES["os"])),
        device=draw(st.sampled_from(VALUES["device"])),
        category=draw(st.sampled_from(VALUES["category"])),
        extension=draw(st.sampled_from(VALUES["extension"])),
        lms=draw(st.sampled_from(VALUES["lms"])),
        course=draw(st.sampled_from(VALUES["course"])),
        viewer=draw(st.sampled_from(["a", "b", "c", "d"])),
        bytes=draw(st.integers(0, 10_000)),
        load_ms=draw(st.integers(1, 5000)),
        bot=draw(st.booleans()),
    )


filters = st.dictionaries(st.sampled_from(sorted(VALUES)), st.none()).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(VALUES[k]) for k in keys})
)


Fresh = Callable[[list[Event]], Warehouse]


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest) -> Iterator[Fresh]:
    """A warehouse holding exactly the given events (emptied through the interface, then filled)."""
    urls = iter(["duckdb://:memory:"]) if request.param == "duckdb" else pg_warehouse_url()
    for url in urls:
        warehouse = build_warehouse(url)
        yield partial(_refill, warehouse)
        warehouse.close()


def _refill(warehouse: Warehouse, rows: list[Event]) -> Warehouse:
    warehouse.delete_before(T0 + timedelta(days=400))
    assert warehouse.count() == 0
    warehouse.insert(rows)
    return warehouse


def _at_most(smaller: Metrics, larger: Metrics) -> None:
    for name in (*ADDITIVE, "viewers"):
        assert getattr(smaller, name) <= getattr(larger, name), name


def q(
    *, scope: str | None = None, bots: bool = False, filters: dict[str, str] | None = None, breakdown: str | None = None
) -> SummaryQuery:
    return SummaryQuery(
        start=T0,
        end=T0 + timedelta(days=6),
        scope_org=scope,
        include_bots=bots,
        filters=filters or {},
        breakdown=breakdown,
        limit=1000,
    )


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(events(), max_size=60),
    chosen=filters,
    more=filters,
    scope=st.sampled_from([None, *ORGS]),
    bots=st.booleans(),
)
def test_a_filter_never_adds_usage(
    fresh: Fresh, rows: list[Event], chosen: dict[str, str], more: dict[str, str], scope: str | None, bots: bool
) -> None:
    warehouse = fresh(rows)
    everything = warehouse.summary(q(scope=scope, bots=bots)).totals
    filtered = warehouse.summary(q(scope=scope, bots=bots, filters=chosen)).totals
    narrower = warehouse.summary(q(scope=scope, bots=bots, filters={**more, **chosen})).totals
    _at_most(filtered, everything)
    _at_most(narrower, filtered)
    if scope is not None:
        _at_most(everything, warehouse.summary(q(bots=bots)).totals)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(events(), max_size=60),
    chosen=filters,
    dimension=st.sampled_from(sorted(set(DIMENSIONS) - {"folder"})),
    scope=st.sampled_from([None, *ORGS]),
)
def test_a_breakdown_adds_up_to_the_total(
    fresh: Fresh, rows: list[Event], chosen: dict[str, str], dimension: str, scope: str | None
) -> None:
    warehouse = fresh(rows)
    result = warehouse.summary(q(scope=scope, filters=chosen, breakdown=dimension))
    for name in ADDITIVE:
        assert sum(getattr(m, name) for _, m in result.breakdown) == getattr(result.totals, name), name
    series_views = sum(m.views for _, m in result.series)
    assert series_views == result.totals.views
    for key, metrics in result.breakdown:
        if key and dimension in VALUES:
            alone = warehouse.summary(q(scope=scope, filters={**chosen, dimension: key}))
            assert alone.totals.views == metrics.views


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(events(), max_size=60))
def test_a_folder_counts_at_least_its_subfolders(fresh: Fresh, rows: list[Event]) -> None:
    warehouse = fresh(rows)

    def views(folder: str) -> int:
        return warehouse.summary(q(filters={"folder": folder})).totals.views

    root, child, grandchild, sibling = (views(f) for f in FOLDERS)
    assert root >= child >= grandchild
    assert root >= child + sibling
    assert root == warehouse.summary(q()).totals.views
