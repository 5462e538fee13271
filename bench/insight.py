"""A file's and a folder's performance pages: the warehouse's time for their figures, p50 and p95.

The events are synthetic (`studyshelf analytics generate`'s traffic model: 90 days, 2,000 files, a few
failing files) and go into a DuckDB file and a PostgreSQL warehouse. Each case is what the page asks for one
target and period: the totals and series as `analytics.service.summarise` reads them — the file's or the folder
subtree's rollups (`reports.read`, from the app DB) when they hold the period, else `Warehouse.summary` over raw
events — and `Warehouse.insight` (failures by audience, load-time histogram, versions, placements, files). Each
case is timed three ways: the headline figures (totals and series) from the rollups, the same from raw events
(as before the rollups answered them), and the whole page (rollups + insight).
Targets: the most popular file, a file of the long tail, the course folder of the most popular file, and the
operator's whole library (the largest subtree).

The data set is kept in bench/results/insight-data and the PostgreSQL database studyshelf_bench_insight (the
warehouse in its schema `analytics`, the app DB with the rollups in `public`, rolled from DuckDB by the reports
job) for the next run (`--rebuild` makes it again). Run: `python -m bench.insight [--events N] [--reps N] [--rebuild]`.
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
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from bench.common import SECRET_KEY
from studyshelf.analytics.reports import read
from studyshelf.analytics.reports.rollup import catch_up
from studyshelf.analytics.synthetic.catalogue import Catalogue, synthesise
from studyshelf.analytics.synthetic.generate import Plan, batches
from studyshelf.core import migrate
from studyshelf.core.db import unit_of_work
from studyshelf.events.schema import encode_lines
from studyshelf.services import build_services
from studyshelf.settings import Settings
from studyshelf.warehouse import Summary, SummaryQuery, Warehouse, build_warehouse

RESULTS = Path(__file__).with_name("results")
DATA = RESULTS / "insight-data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "studyshelf_bench_insight"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}?schema=analytics"
APP_DB_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"  # the rollups, in the schema `public`
ROLLUPS_VERSION = 1  # bump when the rollup tables change: the kept events are rolled up again
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


def _settings(warehouse_url: str) -> Settings:
    return Settings(
        data_dir=DATA,
        secret_key=SECRET_KEY,
        scheduler_interval_seconds=0,
        database_url=APP_DB_URL,
        warehouse_url=warehouse_url,
    )


def ensure_rollups(end: date) -> None:
    """The app DB's rollups of every day of the data set (kept between runs; rolled from DuckDB, the faster)."""
    marker = DATA / "rolled.json"
    if marker.exists() and json.loads(marker.read_text()) == {"end": end.isoformat(), "rollups": ROLLUPS_VERSION}:
        return
    with psycopg.connect(APP_DB_URL, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    services = build_services(_settings(f"duckdb://{DATA / 'warehouse.duckdb'}"))
    try:
        migrate.upgrade(services.engine)
        began = time.monotonic()
        rolled, _left = catch_up(services, now=_now(end))
        print(f"  rolled {rolled} days into the app DB in {time.monotonic() - began:.0f} s", flush=True)
    finally:
        services.warehouse.close()
        services.engine.dispose()
    with psycopg.connect(APP_DB_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    marker.write_text(json.dumps({"end": end.isoformat(), "rollups": ROLLUPS_VERSION}))


def _now(end: date) -> datetime:
    """The clock of the runs: the day after the data set's last day (so every day of it is finished)."""
    return datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)


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


def headline(db: Session, warehouse: Warehouse, query: SummaryQuery, now: datetime) -> Summary:
    """The totals and series as analytics.service.summarise reads them: rollups when they hold the period."""
    return read.summary_from_rollups(db, warehouse, query, now=now) or warehouse.summary(query)


def page(db: Session, warehouse: Warehouse, query: SummaryQuery, now: datetime) -> Any:
    return headline(db, warehouse, query, now), warehouse.insight(query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    end = ensure_data(args.events, rebuild=args.rebuild)
    ensure_rollups(end)
    now = _now(end)
    rows = []
    for label, url in (("DuckDB", f"duckdb://{DATA / 'warehouse.duckdb'}"), ("PostgreSQL", PG_URL)):
        services = build_services(_settings(url))
        warehouse = services.warehouse
        try:
            with unit_of_work(services.read_sessions) as db:
                for case in cases(end):
                    q = case.query
                    source = headline(db, warehouse, q, now).source
                    rolled = _timed(partial(headline, db, warehouse, q, now), args.reps)
                    raw = _timed(partial(warehouse.summary, q), args.reps)
                    whole = _timed(partial(page, db, warehouse, q, now), args.reps)
                    views = warehouse.summary(q).totals.views
                    rows.append((label, case.name, views, source, rolled, raw, whole))
                    print(
                        f"  {label:10} {case.name:45} {views:>9,} views  headline ({source}) p50 {rolled[0]:7.1f} ms"
                        f"  raw {raw[0]:7.1f} ms  page p50 {whole[0]:7.1f} p95 {whole[1]:7.1f} ms",
                        flush=True,
                    )
        finally:
            warehouse.close()
            services.engine.dispose()
    print(f"\n{args.events:,} events over {DAYS} days; target p50 ≤ {TARGET_P95_MS:.0f} ms\n")
    print(
        "| warehouse | page | views in range | headline from | headline p50 / p95 ms | "
        "headline from raw p50 / p95 ms | whole page p50 / p95 ms |"
    )
    print("|---|---|---:|---|---:|---:|---:|")
    for label, name, views, source, rolled, raw, whole in rows:
        flag = "" if whole[0] <= TARGET_P95_MS else " ✗"
        print(
            f"| {label} | {name} | {views:,} | {source} | {rolled[0]:.1f} / {rolled[1]:.1f} | "
            f"{raw[0]:.1f} / {raw[1]:.1f} | {whole[0]:.1f} / {whole[1]:.1f}{flag} |"
        )


if __name__ == "__main__":
    main()
