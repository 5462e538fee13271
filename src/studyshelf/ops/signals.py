"""Request signals for the alarms: every process counts its requests per minute and writes them to the database.

`record_request` is called once per request by `ops/observe.py RequestObserver`, from the one timing it makes of
each request (O(1), under a lock): the minute's count, its 5xx answers and a
fixed latency histogram. A `RequestFlusher` thread per process writes each finished minute into
`request_minutes` under this process's instance id, so readers add up every instance (and every worker
process) of a window and take the p95 from the merged histogram. A minute is written once, when it is over
(or at shutdown), so rows never need merging.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.ops.models import RequestMinute
from studyshelf.services import Services

log = logging.getLogger("studyshelf.ops.signals")
# Upper bounds (seconds, inclusive) of the latency buckets; one more bucket holds everything slower.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
KEEP = timedelta(days=2)
FLUSH_EVERY_SECONDS = 15.0


def instance_id() -> str:
    """This process: host and pid, plus a per-process nonce so a recycled pid never meets its predecessor's rows."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{_NONCE}"


_NONCE = uuid.uuid4().hex[:8]


@dataclass
class MinuteCounts:
    requests: int = 0
    errors_5xx: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def add(self, other: MinuteCounts) -> None:
        self.requests += other.requests
        self.errors_5xx += other.errors_5xx
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    @property
    def error_rate(self) -> float | None:
        return self.errors_5xx / self.requests if self.requests else None

    @property
    def p95_seconds(self) -> float | None:
        """The upper bound of the bucket holding the 95th percentile (twice the last bound when slower)."""
        return percentile(self.buckets, 0.95)


def percentile(buckets: Sequence[int], q: float) -> float | None:
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else LATENCY_BUCKETS[-1] * 2
    return LATENCY_BUCKETS[-1] * 2


class RequestTally:
    """This process's counts per minute (unix minute → counts), until they are flushed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minutes: dict[int, MinuteCounts] = {}

    def record(self, duration_seconds: float, status: int, now: float) -> None:
        minute = int(now // 60)
        bucket = bisect.bisect_left(LATENCY_BUCKETS, duration_seconds)
        with self._lock:
            counts = self._minutes.get(minute)
            if counts is None:
                counts = self._minutes[minute] = MinuteCounts()
            counts.requests += 1
            counts.errors_5xx += status >= 500
            counts.buckets[bucket] += 1

    def take(self, *, before: float | None) -> dict[int, MinuteCounts]:
        """Remove and return the minutes that ended by `before` (unix seconds), or every minute when None."""
        with self._lock:
            done = [m for m in self._minutes if before is None or (m + 1) * 60 <= before]
            return {m: self._minutes.pop(m) for m in done}


TALLY = RequestTally()  # per process on purpose: each process writes its own rows (see the module docstring)


def record_request(duration_seconds: float, status: int, now: float) -> None:
    """Count one answered request of this process (`now`: unix seconds)."""
    TALLY.record(duration_seconds, status, now)


def flush(services: Services, *, tally: RequestTally = TALLY, final: bool = False, instance: str | None = None) -> int:
    """Write this process's finished minutes (every minute when `final`); return how many."""
    taken = tally.take(before=None if final else services.clock.now().timestamp())
    if not taken:
        return 0
    who = instance or instance_id()
    with unit_of_work(services.write_sessions) as db:
        for minute, counts in taken.items():
            db.add(
                RequestMinute(
                    instance=who,
                    minute=datetime.fromtimestamp(minute * 60, UTC),
                    requests=counts.requests,
                    errors_5xx=counts.errors_5xx,
                    buckets=counts.buckets,
                )
            )
    return len(taken)


def window(db: Session, *, start: datetime, end: datetime) -> MinuteCounts:
    """Every instance's requests in the minutes [start, end), added up."""
    total = MinuteCounts()
    rows = db.execute(
        select(RequestMinute.requests, RequestMinute.errors_5xx, RequestMinute.buckets).where(
            RequestMinute.minute >= start, RequestMinute.minute < end
        )
    )
    for requests, errors, buckets in rows:
        total.add(MinuteCounts(requests, errors, list(buckets)))
    return total


def prune(db: Session, *, now: datetime) -> int:
    """Forget minutes older than KEEP."""
    return affected_rows(db.execute(delete(RequestMinute).where(RequestMinute.minute < now - KEEP)))


class RequestFlusher:
    """A daemon thread per process writing its finished minutes every FLUSH_EVERY_SECONDS, and the rest at stop."""

    def __init__(self, services: Services, *, every: float = FLUSH_EVERY_SECONDS) -> None:
        self._services = services
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start writing (again, after a stop: an app's lifespan may run more than once, as in tests)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="studyshelf-request-signals", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._flush(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        try:
            flush(self._services, final=final)
        except Exception:
            log.exception("request signals not written")
