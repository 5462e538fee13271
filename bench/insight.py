"""A file's and a folder's performance pages: the warehouse's time for their figures, p50 and p95.

The events are synthetic (`studyshelf analytics generate`'s traffic model: 90 days, 2,000 files, a few
failing files) and go into a DuckDB file and a PostgreSQL warehouse. Each case is what the page asks for one
target and period: `Warehouse.summary` (totals and series, with the file or folder filter: raw events) and
`Warehouse.insight` (failures by audience, load-time histogram, versions, placements, files), timed together.
Targets: the most popular file, a file of the long tail, the course folder of the most popular file, and the
operator's whole library (the largest subtree).

The data set is kept in bench/results/insight-data and the PostgreSQL database studyshelf_bench_insight for
the next run (`--rebuild` makes it again). Run: `python -m bench.insight [--events N] [--reps N] [--rebuild]`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from studyshelf.analytics.synthetic.catalogue import Catalogue, synthesise
from studyshelf.analytics.synthetic.generate import Plan, batches
from studyshelf.events.schema import encode_lines
from studyshelf.warehouse import SummaryQuery, Warehouse, build_warehouse

RESULTS = Path(__file__).with_name("results")
DATA = RESULTS / "insight-data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "studyshelf_bench_insight"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}?schema=analytics"
SEED = 13
DAYS = 90
TARGET_P95_MS = 300.0


@dataclass(frozen=True)
class Case:
    name: str
    query: SummaryQuery


def _catalogue() -> Catalogue:
    return synthesise(Catalogue(), rng=random.Random(f"bench-insight-{SEED}"), files=2000)  # noqa: S311 - reproducible


def ensure_data(events: int, *, rebuild: bool) -> date:
    """The events in both warehouses (kept between runs); returns the last day."""
    marker = DATA / "loaded.json"
    if not rebuild and marker.exists() and json.loads(marker.read_text())["events"] == events:
        return date.fromisoformat(json.loads(marker.read_text())["end"])
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    end = datetime.now(UTC).date() - timedelta(days=1)
    plan = Plan(events=events, end=end, days=DAYS, seed=SEED, batch=50_000)
    duck, pg = build_warehouse(f"duckdb://{DATA / 'warehouse.duckdb'}"), build_warehouse(PG_URL)
    began = time.monotonic()
    try:
        for batch in batches(_catalogue(), plan):
            lines = encode_lines(batch)
            duck.insert_lines(lines)
            pg.insert_lines(lines)
    finally:
        duck.close()
        pg.close()
    with psycopg.connect(PG_URL.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE analytics.events")
    print(f"  {events:,} events in both warehouses in {time.monotonic() - began:.0f} s", flush=True)
    marker.write_text(json.dumps({"events": events, "end": end.isoformat()}))
    return end


def cases(end: date) -> list[Case]:
    catalogue = _catalogue()
    operator = next(o for o in catalogue.orgs if o.operator)
    top = next(f for f in catalogue.files if f.owner_org == operator.id)
    tail = [f for f in catalogue.files if f.owner_org == operator.id][-1]
    today = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)

    def query(days: int, **filters: str) -> SummaryQuery:
        bucket = "hour" if days <= 2 else "day"
        return SummaryQuery(
            start=today - timedelta(days=days),
            end=today,
            scope_org=operator.id,
            filters=filters,
            bucket=bucket,
            parts=frozenset({"totals", "series"}),
        )

    return [
        Case("most popular file, 30 days", query(30, file=top.id)),
        Case("most popular file, 90 days", query(90, file=top.id)),
        Case("a long-tail file, 90 days", query(90, file=tail.id)),
        Case("its course folder, 30 days", query(30, folder=top.folder_path[1])),
        Case("its course folder, 90 days", query(90, folder=top.folder_path[1])),
        Case("the whole library (root folder), 30 days", query(30, folder=operator.root_folder)),
        Case("the whole library (root folder), 90 days", query(90, folder=operator.root_folder)),
    ]


def _timed(run: Callable[[], object], reps: int) -> tuple[float, float]:
    run()  # warm: plans cached, pages in memory
    samples = []
    for _ in range(reps):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def page(warehouse: Warehouse, query: SummaryQuery) -> Any:
    return warehouse.summary(query), warehouse.insight(query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    end = ensure_data(args.events, rebuild=args.rebuild)
    rows = []
    for label, url in (("DuckDB", f"duckdb://{DATA / 'warehouse.duckdb'}"), ("PostgreSQL", PG_URL)):
        warehouse = build_warehouse(url)
        try:
            for case in cases(end):
                p50, p95 = _timed(lambda q=case.query, w=warehouse: page(w, q), args.reps)  # type: ignore[misc]
                views = warehouse.summary(case.query).totals.views
                rows.append((label, case.name, views, p50, p95))
                print(
                    f"  {label:10} {case.name:45} {views:>9,} views  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms", flush=True
                )
        finally:
            warehouse.close()
    print(f"\n{args.events:,} events over {DAYS} days; target p95 ≤ {TARGET_P95_MS:.0f} ms\n")
    print("| warehouse | page | views in range | p50 ms | p95 ms |")
    print("|---|---|---:|---:|---:|")
    for label, name, views, p50, p95 in rows:
        flag = "" if p95 <= TARGET_P95_MS else " ✗"
        print(f"| {label} | {name} | {views:,} | {p50:.1f} | {p95:.1f}{flag} |")


if __name__ == "__main__":
    main()
