"""Analytics ingest: events per second from accepted (`publish` returned: durable) to queryable (counted in
the warehouse), sustained over a few hundred thousand events.

* embedded: the spool with the drainer thread `serve` runs, into a DuckDB file;
* scale: Redis Streams drained by `studyshelf worker` processes (the real command), into PostgreSQL.

Each is measured with two kinds of publishers, all started at once: *bulk* (4 threads, 100 events a
publish: a beacon flush, an import) and *per request* (64 threads, one event a publish: what a web
request does; the spool's group commit and Redis's one entry per publish decide this rate). The events
are made beforehand by the synthetic traffic model, so making them is not timed.

Run: `python -m bench.analytics_ingest [--events N] [--only embedded|redis]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import psycopg

from bench.common import SECRET_KEY, STUDYSHELF, Processes
from studyshelf.analytics.ingest.drain import Drainer
from studyshelf.analytics.synthetic.catalogue import Catalogue, synthesise
from studyshelf.analytics.synthetic.generate import Plan, batches
from studyshelf.core.clock import utcnow
from studyshelf.events import Event, EventStream
from studyshelf.events.redis_streams import RedisStreamsEventStream
from studyshelf.events.spool import SpoolEventStream
from studyshelf.warehouse import Warehouse, build_warehouse

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
RESULTS = Path(__file__).with_name("results")
SHAPES = {"bulk": (4, 100), "per request": (64, 1)}  # name → (threads, events a publish)
TARGETS = {"embedded": 50_000, "redis": 30_000}


@dataclass
class Result:
    path: str
    publishers: str
    events: int
    accepted_per_s: float  # publish calls returned
    queryable_per_s: float  # from the first publish to the last event counted in the warehouse


def make_events(count: int, *, seed: int = 7) -> list[Event]:
    """Realistic traffic of the last few days over 2,000 synthetic files."""
    catalogue = synthesise(Catalogue(), rng=random.Random(seed), files=2000)  # noqa: S311 - reproducible
    plan = Plan(events=count, end=utcnow().date() - timedelta(days=1), days=3, seed=seed, batch=10_000)
    return [event for batch in batches(catalogue, plan) for event in batch]


def publish_all(stream: EventStream, events: Sequence[Event], *, threads: int, per_publish: int) -> float:
    """Publish from `threads` threads at once, `per_publish` events a call; return when the last returned."""
    shares = [events[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def publish(share: Sequence[Event]) -> None:
        try:
            for start in range(0, len(share), per_publish):
                stream.publish(share[start : start + per_publish])
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    workers = [threading.Thread(target=publish, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return time.perf_counter()


def measure(
    path: str, shape: str, events: Sequence[Event], stream: EventStream, warehouse: Warehouse, *, before: int = 0
) -> Result:
    threads, per_publish = SHAPES[shape]
    started = time.perf_counter()
    accepted = publish_all(stream, events, threads=threads, per_publish=per_publish)
    # Drainers ack only after the warehouse committed, so an empty backlog means all are queryable.
    # (Polling count(*) instead would scan the table every few ms and slow PostgreSQL down.)
    deadline = time.monotonic() + 600
    while stream.backlog():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: {stream.backlog()} events still buffered after 10 minutes")
        time.sleep(0.02)
    done = time.perf_counter()
    stored = warehouse.count() - before
    if stored != len(events):
        raise RuntimeError(f"{path}: the warehouse holds {stored} of the {len(events)} events")
    return Result(path, shape, len(events), len(events) / (accepted - started), len(events) / (done - started))


def embedded(events: Sequence[Event], work: Path) -> list[Result]:
    results = []
    for shape in SHAPES:
        directory = work / f"embedded-{shape.replace(' ', '-')}"
        stream = SpoolEventStream(directory / "events")
        warehouse = build_warehouse(f"duckdb://{directory / 'warehouse.duckdb'}")
        warehouse.count()  # the file exists and is open, as in a running server
        drainer = Drainer(stream, warehouse)
        drainer.start()
        try:
            results.append(measure("spool → DuckDB", shape, events, stream, warehouse))
        finally:
            drainer.stop()
            stream.close()
            warehouse.close()
    return results


def redis_postgres(events: Sequence[Event], work: Path, *, workers: int, batch: int) -> list[Result]:
    results = []
    for shape in SHAPES:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        stream_name = f"studyshelf:bench:{name}"
        warehouse_url = f"{PG_URL}?schema={name}"
        env = {
            "STUDYSHELF_DATA_DIR": str(work / name),
            "STUDYSHELF_SECRET_KEY": SECRET_KEY,
            "STUDYSHELF_REDIS_URL": REDIS_URL,
            "STUDYSHELF_REDIS_STREAM": stream_name,
            "STUDYSHELF_WAREHOUSE_URL": warehouse_url,
            "STUDYSHELF_SCHEDULER_INTERVAL_SECONDS": "0",
        }
        stream = RedisStreamsEventStream(REDIS_URL, stream=stream_name)
        warehouse = build_warehouse(warehouse_url)
        warehouse.count()  # creates the schema before the workers race for it
        try:
            with Processes() as procs:
                for n in range(workers):
                    log = work / f"{name}-worker-{n}.log"
                    argv = [str(STUDYSHELF), "worker", "--name", f"bench-{n}", "--batch", str(batch)]
                    procs.start(argv, env=env, log=log)
                time.sleep(2.0)  # the workers are connected and blocking on the stream
                label = f"Redis → PostgreSQL ({workers} workers)"
                results.append(measure(label, shape, events, stream, warehouse))
        finally:
            stream.client.delete(stream_name, stream.counter)
            stream.close()
            warehouse.close()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    return results


def table(results: list[Result]) -> str:
    rows = ["| path | publishers | events | accepted/s | queryable/s | target |", "|---|---|---:|---:|---:|---|"]
    for r in results:
        target = TARGETS["embedded" if r.path.startswith("spool") else "redis"]
        met = "met" if r.queryable_per_s >= target else "**not met**"
        verdict = f"≥ {target:,} {met}" if r.publishers == "bulk" else "(one event a publish)"
        rates = f"{r.accepted_per_s:,.0f} | {r.queryable_per_s:,.0f}"
        rows.append(f"| {r.path} | {r.publishers} | {r.events:,} | {rates} | {verdict} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000, help="events per measurement")
    parser.add_argument("--only", choices=["embedded", "redis"], default=None)
    parser.add_argument("--workers", type=int, default=2, help="`studyshelf worker` processes for Redis")
    parser.add_argument("--batch", type=int, default=1000, help="`studyshelf worker --batch` (stream entries)")
    args = parser.parse_args()
    print(f"Making {args.events:,} events …", flush=True)
    events = make_events(args.events)
    work = Path(tempfile.mkdtemp(prefix="studyshelf-bench-ingest-"))
    runs: list[Callable[[], list[Result]]] = []
    if args.only in (None, "embedded"):
        runs.append(lambda: embedded(events, work))
    if args.only in (None, "redis"):
        runs.append(lambda: redis_postgres(events, work, workers=args.workers, batch=args.batch))
    results: list[Result] = []
    try:
        for run in runs:
            results += run()
            print(table(results), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analytics_ingest.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print("\n" + table(results))


if __name__ == "__main__":
    main()
