"""Backup health for the product: the Backups page, /readyz and /metrics read it.

Working out the status runs a subprocess (Litestream's or pgBackRest's) and reads the backup location, which
may be a slow or hung mount: `BackupMonitor` caches the answer for a few seconds and waits for it only for a
bounded time, so a request is never held up by the backup location.

The last verify result is a small JSON file in the backup location (`verify.json`): it describes those backup
files, so it travels and disappears with them, and `backup verify` needs no database to record it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime

from studyshelf.ops import backup, backup_pg
from studyshelf.ops.backup import Status
from studyshelf.ops.backup_store import VERIFY
from studyshelf.ops.metrics import BACKUP_LAG, BACKUP_LAST_VERIFY_OK
from studyshelf.services import Services
from studyshelf.settings import Settings

PROBLEMS_KEPT = 20


def current_status(services: Services, now: datetime) -> Status:
    """Where backups stand, from Litestream (SQLite) or pg_stat_archiver and pgBackRest (PostgreSQL)."""
    if backup.uses_pgbackrest(services.settings):
        return backup_pg.status(services.settings, services.engine, now=now)
    return backup.status(services.settings, now=now)


@dataclass(frozen=True, slots=True)
class VerifyRecord:
    at: datetime
    what: str  # the snapshot point or the pgBackRest stanza checked
    ok: bool
    problems: tuple[str, ...]  # the first few, for the page


def record_verify(settings: Settings, *, what: str, problems: list[str], at: datetime) -> None:
    """Keep the outcome of `backup verify` beside the backups it checked."""
    location = backup.location_of(settings)
    location.prepare()
    value = {"at": at.isoformat(), "what": what, "ok": not problems, "problems": problems[:PROBLEMS_KEPT]}
    location.files.write(VERIFY, json.dumps(value, indent=1, sort_keys=True).encode())


def last_verify(settings: Settings) -> VerifyRecord | None:
    location = backup.location_of(settings)
    raw = location.files.read(VERIFY)
    if raw is None:
        return None
    path = f"{location.describe}/{VERIFY}"
    try:
        value = json.loads(raw)
        return VerifyRecord(
            datetime.fromisoformat(value["at"]), str(value["what"]), bool(value["ok"]), tuple(value["problems"])
        )
    except (ValueError, KeyError, TypeError):
        return VerifyRecord(datetime.min.replace(tzinfo=UTC), "?", ok=False, problems=(f"{path} is unreadable",))


@dataclass(frozen=True, slots=True)
class BackupHealth:
    checked_at: datetime
    status: Status | None  # None when the location did not answer in time or could not be read
    problem: str | None
    last_verify: VerifyRecord | None
    max_lag_seconds: float

    @property
    def lag_seconds(self) -> float | None:
        return self.status.lag_seconds if self.status else None

    @property
    def degraded(self) -> bool:
        """Backups are behind or broken: serving goes on, but an operator should look."""
        lag = self.lag_seconds
        return self.problem is not None or (lag is not None and lag > self.max_lag_seconds)

    @property
    def summary(self) -> str:
        if self.problem:
            return f"degraded: {self.problem}"
        lag = self.lag_seconds
        if lag is None:
            return "ok: nothing replicated yet"
        verdict = "degraded" if lag > self.max_lag_seconds else "ok"
        return f"{verdict}: lag {lag:.1f} s (limit {self.max_lag_seconds:.0f} s)"


StatusSource = Callable[[Services, datetime], Status]


def check(services: Services, source: StatusSource = current_status) -> BackupHealth:
    """Work the health out now (may be slow: a subprocess and the backup location's disk)."""
    settings = services.settings
    now = services.clock.now()
    try:
        state = source(services, now)
        verified = None if backup.is_unreachable(state.problem) else last_verify(settings)
    except Exception as exc:  # noqa: BLE001 - a health report shows any failure, it never raises into a request
        return BackupHealth(now, None, str(exc) or type(exc).__name__, None, settings.backup_max_lag_seconds)
    return BackupHealth(now, state, state.problem, verified, settings.backup_max_lag_seconds)


class BackupMonitor:
    """The backup health of this process, at most `ttl` seconds old, and never waited on longer than `wait`."""

    def __init__(
        self, services: Services, *, source: StatusSource = current_status, ttl: float = 5.0, wait: float = 2.0
    ) -> None:
        self._services = services
        self._source = source
        self._ttl = ttl
        self._wait = wait
        self._lock = threading.Lock()
        self._cached: tuple[float, BackupHealth] | None = None
        self._running: Future[BackupHealth] | None = None

    def health(self) -> BackupHealth:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._ttl:
                return self._cached[1]
            if self._running is None:
                # One check at a time: a hung location holds one thread, not one per request. A daemon
                # thread, so that a check stuck on a dead mount never holds up the process's exit.
                self._running = Future()
                threading.Thread(target=self._check, args=(self._running,), name="backup-health", daemon=True).start()
            running = self._running
        try:
            found = running.result(timeout=self._wait)
        except FutureTimeout:
            return BackupHealth(
                self._services.clock.now(),
                None,
                f"the backup location did not answer within {self._wait:.0f} s",
                None,
                self._services.settings.backup_max_lag_seconds,
            )
        with self._lock:
            if self._running is running:
                self._running = None
                self._cached = (time.monotonic(), found)
        return found

    def _check(self, running: Future[BackupHealth]) -> None:
        running.set_result(check(self._services, self._source))  # check() reports every failure in its answer


def export_metrics(health: BackupHealth | None) -> None:
    """Set the backup gauges from a health answer (None: backups are off)."""
    lag = health.lag_seconds if health else None
    BACKUP_LAG.set(math.nan if lag is None else lag)
    verified = health.last_verify if health else None
    BACKUP_LAST_VERIFY_OK.set(math.nan if verified is None else float(verified.ok))
