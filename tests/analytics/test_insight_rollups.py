"""A file's and a folder's totals and series read from the rollups (the file's rows, the folder subtree's rows)
equal those of raw events, on DuckDB and PostgreSQL: the insight pages' headline figures and chart."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from studyshelf.analytics.reports.rollup import catch_up
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from tests.analytics.rollup_support import FILES, FOLDERS, ORGS, seeded, varied
from tests.analytics.support import PARTNER_A
from tests.analytics.test_rollup_reads import DAYS, FIRST, LAST, NOW, query, read, same
from tests.conftest import make_settings
from tests.contracts.test_warehouse import pg_warehouse_url

PAGE_PARTS = frozenset({"totals", "series"})  # what analytics/insight.py asks the service for
TARGETS = ({"folder": FOLDERS[1]}, {"folder": FOLDERS[0]}, {"file": FILES[0]}, {"file": FILES[3]})
PERIODS = (
    (FIRST, LAST - timedelta(days=1), "day"),  # finished days only
    (FIRST, LAST, "day"),  # today comes from the live events
    (date(2026, 4, 1), date(2026, 4, 30), "week"),  # one whole month (its monthly rows)
    (FIRST, LAST, "month"),  # months whole and in part
)


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    else:
        yield from pg_warehouse_url()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, warehouse_url: str) -> Settings:
    return make_settings(tmp_path, db_url, warehouse_url=warehouse_url)


@pytest.fixture
def rolled(services: Services) -> Services:
    start = datetime.combine(FIRST, time(), UTC)
    services.warehouse.insert(varied(seeded(31), start, DAYS * 24, 1500, owners=ORGS))
    assert catch_up(services, now=NOW) == (DAYS - 1, 0)
    return services


def page_query(first: date, last: date, **kw: Any) -> SummaryQuery:
    return query(first, last, parts=PAGE_PARTS, **kw)


def test_a_file_and_a_folder_read_from_rollups_what_raw_events_count(rolled: Services) -> None:
    for filters in TARGETS:
        for first, last, bucket in PERIODS:
            q = page_query(first, last, bucket=bucket, filters=filters)
            found = read(rolled, q)
            assert found is not None, (filters, first, last, bucket)
            assert found.source == "rollups"
            raw = rolled.warehouse.summary(q)
            assert raw.totals.views > 0, filters  # the case is not trivially empty
            same(found, raw)
            assert found.totals.load_p50_ms is not None  # from the file's or subtree's histogram
    partner = dataclasses.replace(page_query(FIRST, LAST, filters=TARGETS[0]), scope_org=PARTNER_A)
    found = read(rolled, partner)  # a partner's own scope of the same folder
    assert found is not None
    same(found, rolled.warehouse.summary(partner))


def test_a_file_or_folder_with_more_than_its_totals_is_left_to_raw_events(rolled: Services) -> None:
    base = page_query(FIRST, LAST, filters={"folder": FOLDERS[1]})
    changes: list[dict[str, Any]] = [
        {"filters": {"folder": FOLDERS[1], "country": "GB"}},  # another filter: raw events
        {"filters": {"folder": FOLDERS[1], "file": FILES[0]}},
        {"filters": {"course": "c1"}},  # not a filter with its own rows
        {"parts": frozenset({"totals", "series", "top"})},  # top files within a folder: not rolled
        {"parts": frozenset({"totals", "breakdown"}), "breakdown": "country"},
        {"bucket": "hour"},
    ]
    for change in changes:
        assert read(rolled, dataclasses.replace(base, **change)) is None, change
