"""Warehouse.insight, written once; DuckDB and PostgreSQL only supply the `warehouse` fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from studyshelf.warehouse import LOAD_BUCKETS_MS, SummaryQuery, Warehouse, build_warehouse
from tests.analytics.support import OWNER, PARTNER_A, PARTNER_B, T0, event
from tests.contracts.test_warehouse import pg_warehouse_url

DAY = timedelta(days=1)
FILE = str(uuid.UUID(int=100))
OTHER_FILE = str(uuid.UUID(int=101))
V1, V2 = str(uuid.UUID(int=200)), str(uuid.UUID(int=201))
SAFARI_IOS: dict[str, Any] = {"browser": "Mobile Safari", "browser_major": "17", "os": "iOS", "device": "mobile"}


def query(**kw: Any) -> SummaryQuery:
    return SummaryQuery(**{"start": T0 - 10 * DAY, "end": T0 + 10 * DAY, "scope_org": OWNER, **kw})


def usage() -> list[Any]:
    """Version 1: Safari 17 on iOS fails to decode it, Chrome loads it; version 2 (a day later) loads everywhere."""
    return [
        *[event(version_id=V1, viewer=f"c{i}", link_id="L1") for i in range(4)],
        *[event("load_ok", version_id=V1, load_ms=120, link_id="L1") for _ in range(4)],
        *[event(version_id=V1, viewer=f"s{i}", link_id="L1", **SAFARI_IOS) for i in range(3)],
        *[event("load_fail", version_id=V1, error_class="decode", **SAFARI_IOS) for _ in range(3)],
        event("load_ok", version_id=V1, load_ms=2500, **SAFARI_IOS),
        event("load_fail", version_id=V1, error_class="network", country="FR"),
        *[event(ts=T0 + DAY, version_id=V2, course="C1", resource_link="R1", lms="canvas") for _ in range(2)],
        *[event("load_ok", ts=T0 + DAY, version_id=V2, load_ms=40, **SAFARI_IOS) for _ in range(2)],
        event(file_id=OTHER_FILE, version_id=str(uuid.UUID(int=300))),
    ]


class InsightContract:
    def test_failures_name_the_audience_and_error_class(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        found = warehouse.insight(query(filters={"file": FILE}))
        top = found.failures[0]
        assert (top.browser, top.browser_major, top.os, top.device, top.error_class) == (
            "Mobile Safari",
            "17",
            "iOS",
            "mobile",
            "decode",
        )
        assert (top.fails, top.attempts) == (3, 6)  # 3 decode failures of 6 loads (1 ok in v1, 2 ok in v2)
        assert top.fail_rate == pytest.approx(0.5)
        assert [(r.country, r.error_class, r.fails, r.attempts) for r in found.failures[1:]] == [
            ("FR", "network", 1, 1)
        ]
        assert sum(r.attempts for r in found.loads) == 4 + 1 + 3 + 1 + 2
        assert sum(r.fails for r in found.loads) == 4

    def test_histogram_counts_successful_loads_per_bucket(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        histogram = warehouse.insight(query(filters={"file": FILE})).histogram
        assert len(histogram) == len(LOAD_BUCKETS_MS) + 1
        assert sum(histogram) == 7
        assert histogram[LOAD_BUCKETS_MS.index(150)] == 4  # 120 ms: [100, 150)
        assert histogram[LOAD_BUCKETS_MS.index(50)] == 2  # 40 ms: [25, 50)
        assert histogram[LOAD_BUCKETS_MS.index(3000)] == 1  # 2.5 s: [2000, 3000)

    def test_versions_show_whether_a_reupload_fixed_it(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        versions = warehouse.insight(query(filters={"file": FILE})).versions
        assert [v.version_id for v in versions] == [V1, V2]
        assert (versions[0].metrics.views, versions[0].metrics.fails, versions[0].metrics.load_ok) == (7, 4, 5)
        assert versions[0].metrics.fail_rate == pytest.approx(4 / 9)
        assert (versions[1].metrics.views, versions[1].metrics.fails) == (2, 0)
        assert versions[1].first_seen == T0 + DAY
        assert versions[0].last_seen == T0

    def test_placements_are_links_and_courses(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        placements = warehouse.insight(query(filters={"file": FILE})).placements
        keys = [(p.link_id, p.lms, p.course, p.resource_link, p.metrics.views) for p in placements]
        assert keys == [("L1", "moodle", "", "", 7), ("", "canvas", "C1", "R1", 2)]

    def test_folder_lists_its_files_and_respects_scope(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        warehouse.insert([event(owner_org=PARTNER_B, partner_org=PARTNER_B, file_id=str(uuid.UUID(int=999)))])
        found = warehouse.insight(query(filters={"folder": str(uuid.UUID(int=9))}))
        assert [(key, m.views) for key, m in found.files] == [(FILE, 9), (OTHER_FILE, 1)]
        assert warehouse.insight(query(scope_org=PARTNER_A)).files == []

    def test_filters_narrow_every_section(self, warehouse: Warehouse) -> None:
        warehouse.insert(usage())
        found = warehouse.insight(query(filters={"file": FILE, "browser": "Chrome"}))
        assert [r.error_class for r in found.failures] == ["network"]
        assert sum(found.histogram) == 4
        assert [v.version_id for v in found.versions] == [V1, V2]

    def test_nothing_in_range(self, warehouse: Warehouse) -> None:
        found = warehouse.insight(query(filters={"file": FILE}))
        assert (found.failures, found.loads, found.versions, found.placements, found.files) == ([], [], [], [], [])
        assert sum(found.histogram) == 0


class TestDuckDB(InsightContract):
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Iterator[Warehouse]:
        w = build_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
        yield w
        w.close()


@pytest.mark.postgres
class TestPostgres(InsightContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        for url in pg_warehouse_url():
            w = build_warehouse(url)
            yield w
            w.close()
