"""A partner's raw-event export: rows/s and memory while streaming CSV and Parquet, DuckDB and PostgreSQL.

N events (default 500,000) of one partner over 30 days, plus as many of another partner that the export must
skip, go into a DuckDB file and a PostgreSQL schema. The export then runs as the API runs it
(`analytics.export.pages` → `csv_chunks` / `parquet_chunks`), discarding the bytes; the figures are rows per
second, the size of the output, and the peak of Python's traced memory and of the process's RSS growth, which
must stay at a few pages however long the range (the whole range as Python rows would be ~N × 3 KB).
Run: `python -m bench.analytics_export [--events N] [--skip-postgres]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from studyshelf.analytics import export
from studyshelf.core.ids import new_id
from studyshelf.events import Event
from studyshelf.events.schema import encode_lines
from studyshelf.warehouse import Warehouse, build_warehouse

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DAYS = 30
PARTNER, OTHER, OWNER = (str(uuid.UUID(int=n)) for n in (2, 3, 1))
END = datetime(2026, 11, 30, tzinfo=UTC)
START = END - timedelta(days=DAYS)


def _events(n: int, partner: str) -> Iterator[Event]:
    step = DAYS * 86_400 / n
    for i in range(n):
        yield Event(
            id=str(new_id()),
            ts=START + timedelta(seconds=i * step),
            type="view" if i % 5 else "load_ok",
            owner_org=OWNER,
            partner_org=partner,
            file_id=str(uuid.UUID(int=1000 + i % 2000)),
            folder_id=str(uuid.UUID(int=10 + i % 50)),
            folder_path=(str(uuid.UUID(int=9)), str(uuid.UUID(int=10 + i % 50))),
            category="pdf",
            extension="pdf",
            country="GB",
            browser="Chrome",
            browser_major="131",
            os="Windows",
            device="desktop",
            lms="moodle",
            course=f"course-{i % 40}",
            resource_link=f"rl-{i % 400}",
            viewer=f"v{i % 9000:05d}",
            session=f"s{i}",
            load_ms=None if i % 5 else 120 + i % 900,
        )


def _fill(warehouse: Warehouse, n: int) -> None:
    for partner in (PARTNER, OTHER):
        batch: list[Event] = []
        for event in _events(n, partner):
            batch.append(event)
            if len(batch) == 20_000:
                warehouse.insert_lines(encode_lines(batch))
                batch.clear()
        if batch:
            warehouse.insert_lines(encode_lines(batch))


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure(warehouse: Warehouse, write: Callable[[Iterator[list[Any]]], Iterator[bytes]]) -> dict[str, float]:
    rng = export.ExportRange(uuid.UUID(PARTNER), "bench", START.date(), END.date(), "UTC", START, END)
    rows = 0

    def counted() -> Iterator[list[Any]]:
        nonlocal rows
        for page in export.pages(warehouse, rng):
            rows += len(page)
            yield page

    rss_before = _rss_kib()
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in write(counted()))
    seconds = time.perf_counter() - started
    rss_growth = _rss_kib() - rss_before
    tracemalloc.start()  # a second pass for the peak: tracing slows Python several times over
    rows = 0
    sum(len(chunk) for chunk in write(counted()))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "output_mib": round(size / 2**20, 1),
        "python_peak_mib": round(peak / 2**20, 1),
        "max_rss_growth_mib": round(rss_growth / 1024, 1),
    }


def _run(name: str, warehouse: Warehouse, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    _fill(warehouse, n)
    print(f"{name}: {2 * n:,} events loaded in {time.perf_counter() - started:.0f} s", flush=True)
    found = {"csv": _measure(warehouse, export.csv_chunks), "parquet": _measure(warehouse, export.parquet_chunks)}
    for fmt, figures in found.items():
        print(f"  {fmt:8} {figures}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events of the exported partner (as many again)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, Any] = {"events": args.events, "page_rows": export.PAGE_ROWS}
    path = RESULTS / "export-bench.duckdb"
    for leftover in (path, Path(f"{path}.wal")):
        leftover.unlink(missing_ok=True)
    duck = build_warehouse(f"duckdb://{path}")
    try:
        results["duckdb"] = _run("DuckDB", duck, args.events)
    finally:
        duck.close()
        path.unlink(missing_ok=True)
    if not args.skip_postgres:
        schema = f"bench_export_{uuid.uuid4().hex[:8]}"
        pg = build_warehouse(f"{PG_ADMIN}?schema={schema}")
        try:
            results["postgresql"] = _run("PostgreSQL", pg, args.events)
        finally:
            pg.close()
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    (RESULTS / "analytics-export.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
