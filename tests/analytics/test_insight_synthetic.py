"""Warehouse.insight over the synthetic generator's traffic: the failure patterns it injects are what the file and
folder pages find. Run on DuckDB and on the PostgreSQL warehouse."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from studyshelf.analytics.insight import MIN_VIEWS_TO_RANK
from studyshelf.analytics.synthetic import traffic
from studyshelf.analytics.synthetic.catalogue import Catalogue, CatalogueFile, synthesise
from studyshelf.analytics.synthetic.generate import Plan, Traffic, generate
from studyshelf.warehouse import Insight, SummaryQuery, Warehouse, build_warehouse
from tests.contracts.test_warehouse import pg_warehouse_url

END = date(2026, 3, 14)
PLAN = Plan(events=40_000, end=END, days=14, seed=7)


def _catalogue() -> Catalogue:
    return synthesise(Catalogue(), rng=random.Random(7), files=200)  # noqa: S311 - reproducible on purpose


def _insight(warehouse: Warehouse, file: CatalogueFile, **filters: str) -> Insight:
    query = SummaryQuery(
        start=datetime.combine(PLAN.start, datetime.min.time(), UTC),
        end=datetime.combine(END + timedelta(days=1), datetime.min.time(), UTC),
        scope_org=file.owner_org,
        filters=filters or {"file": file.id},
    )
    return warehouse.insight(query)


class SyntheticContract:
    @pytest.fixture
    def filled(self, warehouse: Warehouse) -> tuple[Warehouse, Catalogue]:
        catalogue = _catalogue()
        assert generate(warehouse, catalogue, PLAN) > 0
        return warehouse, catalogue

    def test_a_file_that_fails_often_shows_its_error_class(self, filled: tuple[Warehouse, Catalogue]) -> None:
        warehouse, catalogue = filled
        failing = Traffic(catalogue, PLAN).failing  # the same seed: the files the generator made fail
        index = min(failing)  # the most popular of them (one is among the ten most popular)
        found = _insight(warehouse, catalogue.files[index])
        attempts = sum(r.attempts for r in found.loads)
        fails = sum(r.fails for r in found.loads)
        assert attempts > 50
        assert fails / attempts > 0.1  # well above the base rate (0.6%)
        by_error: dict[str, int] = {}
        for row in found.failures:
            by_error[row.error_class] = by_error.get(row.error_class, 0) + row.fails
        assert max(by_error, key=lambda k: by_error[k]) == failing[index].error

    def test_safari_fails_a_webm_file_and_others_load_it(self, filled: tuple[Warehouse, Catalogue]) -> None:
        warehouse, catalogue = filled
        failing = Traffic(catalogue, PLAN).failing
        webm = next(i for i, f in enumerate(catalogue.files) if f.extension == "webm" and i not in failing)
        found = _insight(warehouse, catalogue.files[webm])
        safari = [r for r in found.loads if r.browser in traffic.SAFARI]
        others = [r for r in found.loads if r.browser not in traffic.SAFARI]
        assert sum(r.attempts for r in safari) > 0, "no Safari traffic reached the WebM file"
        assert sum(r.fails for r in safari) / sum(r.attempts for r in safari) > 0.6
        assert sum(r.fails for r in others) <= max(2, sum(r.attempts for r in others) // 20)
        worst = found.failures[0]
        assert (worst.browser in traffic.SAFARI, worst.error_class) == (True, "unsupported")

    def test_a_folder_ranks_a_failing_file_first(self, filled: tuple[Warehouse, Catalogue]) -> None:
        warehouse, catalogue = filled
        failing = Traffic(catalogue, PLAN).failing
        index = min(failing)
        file = catalogue.files[index]
        course = file.folder_path[1]
        found = _insight(warehouse, file, folder=course)
        enough = [(key, m) for key, m in found.files if m.views >= MIN_VIEWS_TO_RANK]
        ranked = sorted(enough, key=lambda item: -(item[1].fail_rate or 0.0))
        # The generator makes two kinds of file fail: a few chosen ones, and WebM for Safari's viewers.
        broken = {catalogue.files[i].id for i in failing} | {f.id for f in catalogue.files if f.extension == "webm"}
        order = [key for key, _m in ranked]
        assert order[0] in broken
        assert file.id in order
        ordinary = [position for position, key in enumerate(order) if key not in broken]
        assert order.index(file.id) < min(ordinary, default=len(order))
        # The folder's figures add up to its files'.
        assert sum(m.views for _key, m in found.files) == sum(v.metrics.views for v in found.versions)


class TestDuckDB(SyntheticContract):
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Iterator[Warehouse]:
        w = build_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
        yield w
        w.close()


@pytest.mark.postgres
class TestPostgres(SyntheticContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        for url in pg_warehouse_url():
            w = build_warehouse(url)
            yield w
            w.close()
