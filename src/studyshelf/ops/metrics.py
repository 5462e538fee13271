"""The Prometheus metrics of a StudyShelf process, and their exposition across worker processes.

Metric objects live here, except the analytics ones, which sit beside the code that counts them
(`analytics/collect.py`, `analytics/beacons.py`, `analytics/ingest/drain.py`: analytics may not import ops).
docs/operations.md "Monitoring" lists every name.

`studyshelf serve` runs several worker processes. It points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before
they start (`prepare_multiprocess_dir`, then it re-executes itself so prometheus-client starts with the variable),
so each worker writes its samples into files there and whichever worker answers `/metrics` reads them all
(`exposition`). Without the variable (tests, one process) the default registry answers.

`studyshelf worker` is a process of its own: it serves its samples (drain, jobs of its minute tick, alarm states) on
a small HTTP server of its own (`serve_worker_metrics`, STUDYSHELF_WORKER_METRICS_HOST:PORT, loopback by default).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from sqlalchemy import Engine, event
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

log = logging.getLogger("studyshelf.ops.metrics")
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

HTTP_REQUESTS = Counter(
    "studyshelf_http_requests_total",
    "HTTP requests answered, by route template, method and status class",
    ["route", "method", "status_class"],
)
HTTP_DURATION = Histogram(
    "studyshelf_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method",
    ["route", "method"],
    buckets=REQUEST_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "studyshelf_http_requests_in_flight", "Requests being answered now, over live workers", multiprocess_mode="livesum"
)
BYTES_SERVED = Counter(
    "studyshelf_bytes_served_total",
    "Response body bytes sent, by family: download (members), media (/m/), viewer (/v/, LTI views), other",
    ["family"],
)
UPLOADS = Counter("studyshelf_uploads_total", "Uploads (new files and versions) by outcome: ok or failed", ["outcome"])
UPLOAD_BYTES = Counter("studyshelf_upload_bytes_total", "Request body bytes of uploads that succeeded")
EVENT_BUFFER_DEPTH = Gauge(
    "studyshelf_event_buffer_depth",
    "Analytics events waiting in the buffer (read at scrape)",
    multiprocess_mode="mostrecent",
)
JOB_RUNS = Counter(
    "studyshelf_job_runs_total", "Scheduled job runs by job and outcome (ok, failed)", ["job", "outcome"]
)
JOB_DURATION = Histogram("studyshelf_job_duration_seconds", "Run time of scheduled jobs", ["job"], buckets=JOB_BUCKETS)
DB_POOL_IN_USE = Gauge(
    "studyshelf_db_pool_in_use", "App database connections checked out, over live workers", multiprocess_mode="livesum"
)
DB_POOL_SIZE = Gauge(
    "studyshelf_db_pool_size",
    "App database connections kept in the pools, over live workers",
    multiprocess_mode="livesum",
)
ALARM_STATE = Gauge(
    "studyshelf_alarm_state",
    "State of an alarm rule in a scope: 0 OK, 1 ALARM",
    ["rule", "scope"],
    multiprocess_mode="mostrecent",
)
BACKUP_LAG = Gauge(
    "studyshelf_backup_lag_seconds",
    "Seconds the backup is behind the database (NaN: unknown or backups off)",
    multiprocess_mode="mostrecent",
)
BACKUP_LAST_VERIFY_OK = Gauge(
    "studyshelf_backup_last_verify_ok",
    "1 if the last `backup verify` passed, 0 if it failed (NaN: never run)",
    multiprocess_mode="mostrecent",
)

_LIVE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def counts_in_files() -> bool:
    """Whether this process's samples go to files (prometheus-client found the variable when it started)."""
    return values.ValueClass is not values.MutexValue


def multiprocess_dir() -> Path | None:
    """The directory this process writes its samples into, when `serve` set one before prometheus-client started.

    A process that imported prometheus-client before the variable was set (uvicorn's single worker runs inside
    `serve` itself) keeps its samples in memory and answers from them."""
    value = os.environ.get(MULTIPROCESS_ENV)
    return Path(value) if value and counts_in_files() else None


def prepare_multiprocess_dir(path: Path) -> Path:
    """Create the directory, or empty it of the samples of an earlier run (its workers are gone)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def mark_dead_workers(path: Path) -> list[int]:
    """Drop the live gauges (in flight, pool use) of worker processes that are gone; return their pids."""
    dead = sorted(
        {int(found.group(1)) for file in path.glob("gauge_live*.db") if (found := _LIVE_FILE.fullmatch(file.name))}
    )
    dead = [pid for pid in dead if not _alive(pid)]
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    return dead


def mark_this_process_dead() -> None:
    """At a worker's orderly exit: its live gauges stop counting at once."""
    if (path := multiprocess_dir()) is not None:
        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]  # untyped upstream


def exposition() -> bytes:
    """The text exposition of every metric: all workers' samples under `serve`, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    mark_dead_workers(path)  # a worker that crashed never ran its exit: its live gauges would count forever
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]  # untyped upstream
    return generate_latest(registry)


def serve_worker_metrics(host: str, port: int) -> WSGIServer | None:
    """Serve this process's metrics at http://host:port/metrics in a daemon thread; None when `port` is 0 or the
    address is taken (a second worker on the host: it drains all the same, its figures go unscraped)."""
    if port == 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        log.warning("the worker's /metrics could not listen on %s:%d: %s", host, port, exc)
        return None
    return server


def _checked_out(_dbapi: object, _record: ConnectionPoolEntry, _proxy: object) -> None:
    DB_POOL_IN_USE.inc()


def _checked_in(_dbapi: object, _record: ConnectionPoolEntry) -> None:
    DB_POOL_IN_USE.dec()


def watch_pool(engine: Engine) -> None:
    """Keep the pool gauges of this process current for `engine` (once per engine)."""
    pool = engine.pool
    DB_POOL_SIZE.set(pool.size() if isinstance(pool, QueuePool) else 0)
    if not event.contains(pool, "checkout", _checked_out):
        event.listen(pool, "checkout", _checked_out)
        event.listen(pool, "checkin", _checked_in)
