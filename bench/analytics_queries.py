"""Dashboard queries over 10 million events: p50/p95 on DuckDB raw, PostgreSQL raw and the rollups.

The events are synthetic (`studyshelf analytics generate`'s traffic model: 90 days, 2,000 files, skewed
countries, browsers and file types, a few failing files) and go into both warehouses; the daily rollups
are then made by the reports job (`reports.rollup.catch_up`) into an SQLite and a PostgreSQL app DB.
Every query runs through our query module (`Warehouse.summary` for raw events, `reports.read` for the
rollups) and, in the same run, as the same bare SQL straight on the engine, so the module's own cost
shows as a ratio (target ≤ 1.5). The rollups read by PostgreSQL answer each dashboard query they can
hold within 100 ms p50 (target).

The data set is kept in bench/results/analytics-data and in the PostgreSQL database
studyshelf_bench_analytics for the next run (`--rebuild` makes it again; ~15 minutes for 10 M).
Run: `python -m bench.analytics_queries [--events N] [--rebuild] [--reps N] [--skip-postgres-raw]` (part of
`make bench`).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from sqlalchemy.orm import Session

from bench.common import SECRET_KEY
from studyshelf.analytics import service
from studyshelf.analytics.reports import audience, read
from studyshelf.analytics.reports.rollup import catch_up, window
from studyshelf.analytics.synthetic.catalogue import Catalogue, synthesise
from studyshelf.analytics.synthetic.generate import Plan, batches
from studyshelf.core import migrate
from studyshelf.core.db import CUSTOM_PLANS, sql_log, unit_of_work
from studyshelf.events.schema import encode_lines
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.warehouse import Part, SummaryQuery, build_warehouse
from studyshelf.warehouse import query as q

RESULTS = Path(__file__).with_name("results")
DATA = RESULTS / "analytics-data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "studyshelf_bench_analytics"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
SEED = 11
DAYS = 90
P50_TARGET_MS = 100.0
ROLLUPS_VERSION = 3  # bump when the rollup tables change: the kept events are rolled up again
RATIO_TARGET = 1.5


@dataclass(frozen=True)
class Case:
    name: str
    query: SummaryQuery


@dataclass
class Timing:
    case: str
    engine: str  # duckdb raw | postgresql raw | rollups (sqlite) | rollups (postgresql)
    p50_ms: float
    p95_ms: float
    bare_p50_ms: float
    source: str  # what answered: raw | rollups

    @property
    def ratio(self) -> float:
        return self.p50_ms / self.bare_p50_ms if self.bare_p50_ms else float("nan")


# -- the data set -----------------------------------------------------------------------------------


def _marker(events: int, end: date) -> dict[str, Any]:
    return {"events": events, "seed": SEED, "days": DAYS, "end": end.isoformat(), "version": 2}


def _catalogue() -> Catalogue:
    return synthesise(Catalogue(), rng=random.Random(f"bench-{SEED}"), files=2000)  # noqa: S311 - reproducible


def _settings(data_dir: Path, **kw: Any) -> Settings:
    return Settings(data_dir=data_dir, secret_key=SECRET_KEY, scheduler_interval_seconds=0, **kw)


@contextmanager
def _services(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    try:
        yield services
    finally:
        services.warehouse.close()
        services.engine.dispose()


def _pg_database(*, fresh: bool) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DB]).fetchone()
        if exists and fresh:
            conn.execute(f"DROP DATABASE {PG_DB} WITH (FORCE)")
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {PG_DB}")


def _load(events: int, end: date) -> None:
    """Both warehouses, the same events."""
    catalogue = _catalogue()
    plan = Plan(events=events, end=end, days=DAYS, seed=SEED, batch=50_000)
    duck = build_warehouse(f"duckdb://{DATA / 'warehouse.duckdb'}")
    pg = build_warehouse(f"{PG_URL}?schema=analytics")
    started, written = time.monotonic(), 0
    try:
        for batch in batches(catalogue, plan):
            lines = encode_lines(batch)
            duck.insert_lines(lines)
            pg.insert_lines(lines)
            written += len(batch)
            if written % 1_000_000 < len(batch):
                rate = written / (time.monotonic() - started)
                print(f"  {written:,} events in both warehouses ({rate:,.0f}/s)", flush=True)
    finally:
        duck.close()
        pg.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE analytics.events")


def _roll(end: date) -> None:
    """Both app DBs, fresh, rolled up by the reports job (both from DuckDB: the rollups are a function of
    the events, and the faster source saves minutes)."""
    (DATA / "studyshelf.sqlite3").unlink(missing_ok=True)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    for label, database_url in (("SQLite", None), ("PostgreSQL", PG_URL)):
        settings = _settings(DATA, database_url=database_url, warehouse_url=f"duckdb://{DATA / 'warehouse.duckdb'}")
        with _services(settings) as services:
            migrate.upgrade(services.engine)
            began = time.monotonic()
            rolled, _left = catch_up(services, now=datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC))
            print(f"  rolled {rolled} days into the {label} app DB in {time.monotonic() - began:.0f} s", flush=True)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def ensure_data(events: int, *, rebuild: bool) -> date:
    """The data set for `events` events ending yesterday (kept between runs); returns its last day.

    Two stages, each marked when done: the events in both warehouses, then the rollups in both app DBs."""
    wanted = _marker(events, datetime.now(UTC).date() - timedelta(days=1))
    keys = ("events", "seed", "days", "version")

    def same(have: dict[str, Any]) -> bool:
        return all(have.get(k) == wanted[k] for k in keys)

    loaded, rolled = DATA / "loaded.json", DATA / "marker.json"
    if not rebuild and rolled.exists() and json.loads(rolled.read_text()).get("rollups") == ROLLUPS_VERSION:
        end = date.fromisoformat(json.loads(rolled.read_text())["end"])
        print(f"Reusing the data set in {DATA} (events up to {end}).")
        return end
    if rebuild or not loaded.exists() or not same(json.loads(loaded.read_text())):
        print(f"Building the data set: {events:,} events over {DAYS} days …", flush=True)
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True)
        _pg_database(fresh=True)
        _load(events, date.fromisoformat(wanted["end"]))
        loaded.write_text(json.dumps(wanted))
    have = json.loads(loaded.read_text())
    print("Rolling the days up …", flush=True)
    _roll(date.fromisoformat(have["end"]))
    rolled.write_text(json.dumps({**have, "rollups": ROLLUPS_VERSION}))
    return date.fromisoformat(have["end"])


# -- the queries ------------------------------------------------------------------------------------


def cases(end: date) -> list[Case]:
    """What the dashboard asks, for the operator (who sees the most), each range ending today."""
    catalogue = _catalogue()
    operator = next(o for o in catalogue.orgs if o.operator).id
    today = end + timedelta(days=1)

    def days(n: int, **kw: Any) -> SummaryQuery:
        first = today - timedelta(days=n - 1)
        return SummaryQuery(start=window("UTC", first)[0], end=window("UTC", today)[1], scope_org=operator, **kw)

    top_folder = catalogue.files[0].folder_path[1]  # the course folder of the most popular file
    overview: frozenset[Part] = frozenset({"totals", "series", "top"})  # the dashboard's first query
    breakdown: frozenset[Part] = frozenset({"breakdown"})  # then one of these per chart
    series: frozenset[Part] = frozenset({"totals", "series"})
    return [
        Case("overview: KPIs, daily series, top files and folders, 30 days", days(30, parts=overview)),
        Case("chart: views by country, 30 days", days(30, breakdown="country", parts=breakdown)),
        Case("chart: fail rate by browser, 90 days", days(90, breakdown="browser", parts=breakdown)),
        Case("top 20 files, 90 days", days(90, breakdown="file", limit=20, parts=breakdown)),
        Case("weekly series, 90 days", days(90, bucket="week", parts=series)),
        Case(
            "series, country + browser filters, 30 days",
            days(30, filters={"country": "DE", "browser": "Chrome"}, parts=series),
        ),
        Case(
            "chart under a filter: views by OS, country DE, 30 days",
            days(30, filters={"country": "DE"}, breakdown="os", parts=breakdown),
        ),
        Case(
            "one course folder (subtree) by file type, 30 days",
            days(30, filters={"folder": top_folder}, breakdown="category"),
        ),
        Case("everything at once (the API's default), 30 days", days(30, breakdown="country")),
    ]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _timed(run: Callable[[], object], reps: int) -> list[float]:
    run()  # warm: plans cached, pages in memory
    samples = []
    for _ in range(reps):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def raw_duckdb(case: Case, reps: int) -> Timing:
    path = DATA / "warehouse.duckdb"
    sql, params = q.summary_sql(case.query)
    params = [p.astimezone(UTC).replace(tzinfo=None) if isinstance(p, datetime) else p for p in params]
    module: list[float] = []
    bare: list[float] = []
    for _ in range(2):  # interleaved, so a change in the machine's load hits both alike
        warehouse = build_warehouse(f"duckdb://{path}")
        try:
            module += _timed(lambda w=warehouse: w.summary(case.query), max(1, reps // 2))
        finally:
            warehouse.close()
        con = duckdb.connect(str(path), read_only=True)
        try:
            bare += _timed(lambda c=con: c.execute(sql, params).fetchall(), max(1, reps // 2))
        finally:
            con.close()
    return Timing(case.name, "DuckDB raw", *_percentiles(module), _percentiles(bare)[0], "raw")


def raw_postgres(case: Case, reps: int) -> Timing:
    """Raw scans take seconds here: a third of the runs (at least 4), half of them before the bare SQL."""
    reps = max(4, reps // 3)
    warehouse = build_warehouse(f"{PG_URL}?schema=analytics")
    sql, params = q.summary_sql(case.query, postgres=True)
    with psycopg.connect(PG_URL, options=f"-c timezone=UTC -c search_path=analytics {CUSTOM_PLANS}") as conn:
        rounds_module, rounds_bare = [], []
        for _ in range(2):  # interleaved, so a change in the machine's load hits both alike
            rounds_module += _timed(lambda w=warehouse: w.summary(case.query), max(1, reps // 2))
            rounds_bare += _timed(lambda: conn.execute(sql.replace("?", "%s"), params).fetchall(), max(1, reps // 2))
    warehouse.close()
    return Timing(case.name, "PostgreSQL raw", *_percentiles(rounds_module), _percentiles(rounds_bare)[0], "raw")


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.__dict__["sql"], record.__dict__["params"]))


def _captured(warehouse: Any, run: Callable[[], object]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The statements (and parameters) one call sends to the app DB (as the driver gets them, from
    `core.db.sql_log`) and to the warehouse (`_all`, `?` placeholders)."""
    recorder, live = _Recorder(), []
    read_all = warehouse._all

    def recording(sql: str, params: list[Any]) -> Any:
        live.append((sql, params))
        return read_all(sql, params)

    level = sql_log.level
    sql_log.addHandler(recorder)
    sql_log.setLevel(logging.DEBUG)
    warehouse._all = recording
    try:
        run()
    finally:
        del warehouse._all
        sql_log.removeHandler(recorder)
        sql_log.setLevel(level)
    return recorder.seen, live


def rollups(case: Case, reps: int, *, label: str, database_url: str | None) -> Timing:
    """Through reports.read, today's live part from the warehouse beside it (DuckDB | PostgreSQL). Module and
    bare runs alternate in three rounds, so a change in the machine's load hits both alike.

    The module runs in a session already begun, as in a request: the API has read the organisation's time
    zone and the dashboard asks several summaries on one session, so the connection's checkout (with its
    pre-ping) and the end of the transaction are the request's, once, not the query's. The bare SQL runs on
    one open transaction likewise."""
    warehouse_url = f"duckdb://{DATA / 'warehouse.duckdb'}" if database_url is None else f"{PG_URL}?schema=analytics"
    settings = _settings(DATA, database_url=database_url, warehouse_url=warehouse_url)
    timings: list[float] = []
    bare: list[float] = []
    for round_ in range(3):
        with _services(settings) as services, unit_of_work(services.read_sessions) as db:
            if round_ == 0:
                migrate.upgrade(services.engine)  # a data set kept from an older run gets newer indexes
            service.time_zone(db, org_id=uuid.UUID(case.query.scope_org or ""))  # the request's session, begun

            def module(db: Session = db, services: Services = services) -> object:  # as analytics.service.summarise
                found = read.summary_from_rollups(db, services.warehouse, case.query, now=services.clock.now())
                return found or audience.summary_from_audience(
                    db, services.warehouse, case.query, now=services.clock.now()
                )

            if module() is None:
                return Timing(case.name, f"rollups ({label})", float("nan"), float("nan"), float("nan"), "raw")
            statements, live = _captured(services.warehouse, module)
            if not statements:
                raise RuntimeError(f"{case.name}: no statements captured from the app DB")
            timings += _timed(module, max(1, reps // 3))
        bare += _bare_app_db(statements, database_url=database_url, live=live, reps=max(1, reps // 3))
    return Timing(case.name, f"rollups ({label})", *_percentiles(timings), _percentiles(bare)[0], "rollups")


def _bare_app_db(
    statements: list[tuple[str, Any]], *, database_url: str | None, live: list[tuple[str, Any]], reps: int
) -> list[float]:
    """The same statements on a plain DBAPI connection, plus the live warehouse statements beside it."""
    if database_url is None:
        conn: Any = sqlite3.connect(DATA / "studyshelf.sqlite3")
        warehouse: Any = duckdb.connect(str(DATA / "warehouse.duckdb"), read_only=True)
        live = [(sql, [_naive(p) for p in params]) for sql, params in live]
    else:
        conn = psycopg.connect(database_url, options=CUSTOM_PLANS)  # as the app's engine connects
        warehouse = psycopg.connect(
            database_url, autocommit=True, options=f"-c timezone=UTC -c search_path=analytics {CUSTOM_PLANS}"
        )
        live = [(sql.replace("?", "%s"), params) for sql, params in live]

    def run() -> None:
        cursor = conn.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        for statement, parameters in live:
            warehouse.execute(statement, parameters).fetchall()

    try:
        return _timed(run, reps)
    finally:
        conn.rollback()
        conn.close()
        warehouse.close()


def _naive(value: Any) -> Any:
    """A timestamp as the DuckDB warehouse binds it (naive UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) and value.tzinfo else value


# -- the report -------------------------------------------------------------------------------------


def table(timings: list[Timing]) -> str:
    rows = [
        "| query | engine | p50 ms | p95 ms | bare SQL p50 ms | module / bare | targets |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for t in timings:
        if t.source != "rollups" and t.engine.startswith("rollups"):
            rows.append(f"| {t.case} | {t.engine} | — | — | — | — | not held by rollups: raw events answer |")
            continue
        verdicts = [f"ratio ≤ {RATIO_TARGET}: " + ("met" if t.ratio <= RATIO_TARGET else "**not met**")]
        if t.engine == "rollups (PostgreSQL)":
            verdicts.append(f"p50 ≤ {P50_TARGET_MS:.0f} ms: " + ("met" if t.p50_ms <= P50_TARGET_MS else "**not met**"))
        rows.append(
            f"| {t.case} | {t.engine} | {t.p50_ms:.1f} | {t.p95_ms:.1f} | {t.bare_p50_ms:.1f} | {t.ratio:.2f} | "
            + "; ".join(verdicts)
            + " |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rebuild", action="store_true", help="make the data set again")
    parser.add_argument("--reps", type=int, default=15, help="timed runs per query and engine")
    parser.add_argument(
        "--skip-postgres-raw", action="store_true", help="leave out PostgreSQL raw scans (most of the run's time)"
    )
    args = parser.parse_args()
    end = ensure_data(args.events, rebuild=args.rebuild)
    timings: list[Timing] = []
    for case in cases(end):
        print(f"{case.name} …", flush=True)
        timings.append(raw_duckdb(case, args.reps))
        if not args.skip_postgres_raw:
            timings.append(raw_postgres(case, args.reps))
        timings.append(rollups(case, args.reps, label="SQLite", database_url=None))
        timings.append(rollups(case, args.reps, label="PostgreSQL", database_url=PG_URL))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_queries.json").write_text(
        json.dumps([{**asdict(t), "ratio": t.ratio} for t in timings], indent=2)
    )
    print(f"\n{args.events:,} events, {DAYS} days; p50/p95 of {args.reps} runs after one warm-up\n")
    print(table(timings))


if __name__ == "__main__":
    main()
