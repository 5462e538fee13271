"""The dashboard's live panel over 1 million events: p50/p95 of its one query on DuckDB and PostgreSQL.

The panel (analytics/live.py) asks the warehouse for the last 30 minutes by minute with the top files, scoped to
one organisation, from raw events (`service.live_query`). The events are synthetic (`studyshelf analytics
generate`'s traffic model: 30 days, 2,000 files); "now" is 14:00 UTC on the last day, in the school-hours peak.
Queries are timed for the operator (usage of all its content) and for one partner, each with and without a
country filter. The data is kept in bench/results/live-data and the PostgreSQL database studyshelf_bench_live
(`--rebuild` makes it again, about a minute).

Run: `python -m bench.analytics_live [--events N] [--reps N] [--rebuild]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as day_time
from pathlib import Path

import psycopg

from studyshelf.analytics import service
from studyshelf.analytics.synthetic.catalogue import Catalogue, synthesise
from studyshelf.analytics.synthetic.generate import Plan, batches
from studyshelf.events.schema import encode_lines
from studyshelf.warehouse import Warehouse, build_warehouse

RESULTS = Path(__file__).with_name("results")
DATA = RESULTS / "live-data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "studyshelf_bench_live"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}?schema=analytics"
SEED = 18
DAYS = 30
END = date(2026, 11, 30)
NOW = datetime.combine(END, day_time(14, 0), UTC)


def _catalogue() -> Catalogue:
    return synthesise(Catalogue(), rng=random.Random(f"live-{SEED}"), files=2000)  # noqa: S311 - reproducible


def _pg_database(*, fresh: bool) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DB]).fetchone()
        if exists and fresh:
            conn.execute(f"DROP DATABASE {PG_DB} WITH (FORCE)")
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {PG_DB}")


def ensure_data(events: int, *, rebuild: bool) -> Catalogue:
    catalogue = _catalogue()
    marker = DATA / "marker.json"
    wanted = {"events": events, "seed": SEED, "days": DAYS, "end": END.isoformat()}
    if not rebuild and marker.exists() and json.loads(marker.read_text()) == wanted:
        return catalogue
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    _pg_database(fresh=True)
    duck = build_warehouse(f"duckdb://{DATA / 'warehouse.duckdb'}")
    pg = build_warehouse(PG_URL)
    began = time.monotonic()
    try:
        for batch in batches(catalogue, Plan(events=events, end=END, days=DAYS, seed=SEED, batch=50_000)):
            lines = encode_lines(batch)
            duck.insert_lines(lines)
            pg.insert_lines(lines)
    finally:
        duck.close()
        pg.close()
    with psycopg.connect(PG_URL.split("?", maxsplit=1)[0], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE analytics.events")
    print(f"  {events:,} events in both warehouses in {time.monotonic() - began:.0f} s", flush=True)
    marker.write_text(json.dumps(wanted))
    return catalogue


def _timed(run: Callable[[], object], reps: int) -> tuple[float, float]:
    run()  # warm
    samples = []
    for _ in range(reps):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    catalogue = ensure_data(args.events, rebuild=args.rebuild)
    operator = next(org for org in catalogue.orgs if org.operator)
    partner = next(org for org in catalogue.orgs if not org.operator)
    cases = [
        ("operator", uuid.UUID(operator.id), {}),
        ("operator, country=GB", uuid.UUID(operator.id), {"country": "GB"}),
        ("a partner", uuid.UUID(partner.id), {}),
    ]
    print(f"live panel: the last 30 minutes before {NOW:%Y-%m-%d %H:%M} UTC, {args.events:,} events, {args.reps} reps")
    print("| warehouse | scope | events in the window | p50 ms | p95 ms |\n|---|---|---:|---:|---:|")
    for label, url in (("DuckDB", f"duckdb://{DATA / 'warehouse.duckdb'}"), ("PostgreSQL", PG_URL)):
        warehouse: Warehouse = build_warehouse(url)
        try:
            for name, org_id, filters in cases:
                query = service.live_query(org_id=org_id, filters=filters, now=NOW)
                found = warehouse.summary(query)
                in_window = found.totals.views + found.totals.load_ok + found.totals.fails
                p50, p95 = _timed(lambda q=query, w=warehouse: w.summary(q), args.reps)
                print(f"| {label} | {name} | {in_window:,} | {p50:.1f} | {p95:.1f} |", flush=True)
        finally:
            warehouse.close()


if __name__ == "__main__":
    main()
