"""Drain the event stream into the warehouse: read a batch, insert it in one transaction, then ack.

A crash between insert and ack delivers the batch again; the warehouse skips ids it holds, so nothing
counts twice. A warehouse that is down keeps the batch in hand and retries with back-off: the events
stay in the buffer (and /readyz says so).

Batches move as the JSON lines the buffer keeps: the warehouse parses them in bulk (`insert_lines`), so
no Python object is made per event. While batches come back full (a backlog),
the drainer doubles the next one, up to MAX_BATCH events, and drops back once it has caught up.

An `after_store` hook (the app's view counters, `delivery/view_counts.py`, wired by the app and the worker)
sees every batch after the warehouse took it and before the ack, and is called on empty reads too (for its
periodic work); when it fails, the batch is kept and stored again, so the hook must count each event once.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError

from studyshelf.core.clock import utcnow
from studyshelf.events import Batch, EventStream, EventStreamError, ingest_lag_seconds
from studyshelf.warehouse import Warehouse, WarehouseError

log = logging.getLogger("studyshelf.analytics.ingest")
EVENTS_STORED = Counter("studyshelf_events_stored", "Analytics events newly stored in the warehouse")
EVENTS_DUPLICATE = Counter("studyshelf_events_duplicate", "Redelivered analytics events the warehouse skipped")
DRAIN_FAILURES = Counter("studyshelf_drain_failures_total", "Failed attempts to move a batch into the warehouse")
DRAIN_FAILING = Gauge(
    "studyshelf_drain_consecutive_failures", "Failed attempts in a row of a live drainer", multiprocess_mode="livemax"
)
WAREHOUSE_WRITE = Histogram(
    "studyshelf_warehouse_write_seconds",
    "Time to insert one batch of events into the warehouse",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
INGEST_LAG = Gauge(
    "studyshelf_event_ingest_lag_seconds",
    "Seconds the oldest event not yet in the warehouse has waited in the buffer, as a live drainer saw it last",
    multiprocess_mode="livemax",
)
MAX_BACKOFF = 30.0
MAX_BATCH = 20_000
AfterStore = Callable[[Batch], None]


def consumer_name() -> str:
    """host-pid: unique per live process, so a dead one's pending events are claimed by the living."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class DrainResult:
    read: int
    stored: int


def drain_once(
    events: EventStream,
    warehouse: Warehouse,
    *,
    consumer: str,
    max_count: int = 1000,
    block_ms: int = 0,
    after_store: AfterStore | None = None,
) -> DrainResult:
    """Move one batch; raises WarehouseError (batch left unacked) or EventStreamError."""
    batch = events.read(consumer=consumer, max_count=max_count, block_ms=block_ms)
    return store(events, warehouse, batch, after_store=after_store)


def store(
    events: EventStream, warehouse: Warehouse, batch: Batch, *, after_store: AfterStore | None = None
) -> DrainResult:
    """Insert a batch into the warehouse, let the hook see it, then ack it."""
    stored = 0
    if batch.count:
        started = time.monotonic()
        stored = warehouse.insert_lines(batch.lines)
        WAREHOUSE_WRITE.observe(time.monotonic() - started)
    if after_store is not None:
        after_store(batch)
    if batch.token is not None:
        events.ack(batch)
    observe_lag(events)
    EVENTS_STORED.inc(stored)
    EVENTS_DUPLICATE.inc(batch.count - stored)
    return DrainResult(batch.count, stored)


def observe_lag(events: EventStream) -> None:
    """Set the ingest lag gauge from the buffer's oldest waiting event (NaN while the buffer cannot say)."""
    try:
        INGEST_LAG.set(ingest_lag_seconds(events, utcnow()))
    except EventStreamError:
        INGEST_LAG.set(math.nan)


def drain_all(
    events: EventStream,
    warehouse: Warehouse,
    *,
    consumer: str,
    max_count: int = 1000,
    after_store: AfterStore | None = None,
) -> int:
    """Drain until the stream has nothing more to give; return events read."""
    total = 0
    while (
        result := drain_once(events, warehouse, consumer=consumer, max_count=max_count, after_store=after_store)
    ).read:
        total += result.read
    return total


def run(
    events: EventStream,
    warehouse: Warehouse,
    *,
    stop: threading.Event,
    consumer: str | None = None,
    max_count: int = 1000,
    block_ms: int = 500,
    idle_seconds: float = 0.0,
    grow_to: int | None = None,
    after_store: AfterStore | None = None,
) -> None:
    """Drain until `stop` is set, retrying with back-off while the warehouse or the stream is down.

    `block_ms` lets the stream wait for events (Redis); `idle_seconds` instead sleeps between empty polls,
    waking at once when `stop` is set (the in-process drainer, so shutting down never waits on a read).
    With `grow_to`, batches double from `max_count` up to it while they come back full."""
    consumer = consumer or consumer_name()
    failures = 0
    size = max_count
    batch: Batch | None = None  # kept across failed inserts, so a warehouse outage only delays it
    while not stop.is_set():
        try:
            if batch is None:
                batch = events.read(consumer=consumer, max_count=size, block_ms=block_ms)
            result = store(events, warehouse, batch, after_store=after_store)
            batch = None
            failures = 0
            if grow_to is not None:
                size = min(max(grow_to, max_count), 2 * size) if result.read >= size else max_count
            if not result.read and idle_seconds:
                stop.wait(idle_seconds)
        except (WarehouseError, EventStreamError, SQLAlchemyError):
            failures += 1
            DRAIN_FAILURES.inc()
            log.warning("draining events failed (%d in a row); retrying", failures, exc_info=failures == 1)
            observe_lag(events)  # a stuck drain is when the lag matters most
            stop.wait(min(MAX_BACKOFF, 0.5 * 2**failures))
        DRAIN_FAILING.set(failures)


class Drainer:
    """The in-process drainer of the embedded spool, run by the app's lifespan in a daemon thread."""

    def __init__(
        self,
        events: EventStream,
        warehouse: Warehouse,
        *,
        max_count: int = 1000,
        grow_to: int = MAX_BATCH,
        after_store: AfterStore | None = None,
    ) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run,
            args=(events, warehouse),
            kwargs={
                "stop": self._stop,
                "max_count": max_count,
                "consumer": consumer_name(),
                "block_ms": 0,
                "idle_seconds": 0.2,
                "grow_to": grow_to,
                "after_store": after_store,
            },
            name="studyshelf-drainer",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_until_drained(events: EventStream, *, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while events.backlog() and time.monotonic() < deadline:
        time.sleep(0.02)
    return events.backlog() == 0
