"""What the alarm rules can watch: each metric's reader, its scopes, units and sane bounds.

A reader answers the metric's value per scope key at the end of a window: "" for the whole platform, an
organisation id, or a file id (with the organisation owning it). A missing key means no data (neither breaching
nor clearing on its own). Readers run in the scheduler's alarm job, never on a request path.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Uuid, column, func, select, table
from sqlalchemy.orm import Session

from studyshelf.core.db import UtcDateTime
from studyshelf.events import EventStreamError, ingest_lag_seconds
from studyshelf.ops import backup_health, signals
from studyshelf.services import Services
from studyshelf.web.i18n import N_

T = TypeVar("T")
GLOBAL = N_("global")  # scopes, units and labels: stored as they are, translated where shown
ORGANISATION = N_("organisation")
FILE = N_("file")
SCOPES = (GLOBAL, ORGANISATION, FILE)


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    org_id: uuid.UUID | None = None  # whose scope it is (None: the operator's)


@dataclass(frozen=True, slots=True)
class Window:
    """One datapoint's window: [end - minutes, end), `end` a whole minute; `shared` holds what one evaluation run
    has read already (the warehouse's load failures serve three rules, backup health two)."""

    end: datetime
    minutes: int
    min_views: int
    shared: dict[Hashable, object] = field(default_factory=dict, compare=False)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(minutes=self.minutes)

    def once(self, key: Hashable, read: Callable[[], T]) -> T:
        if key not in self.shared:
            self.shared[key] = read()
        return cast(T, self.shared[key])


Reader = Callable[[Services, Session, Window, str], dict[str, Sample]]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    label: str
    unit: str
    scopes: tuple[str, ...]
    maximum: float  # thresholds above this are refused as absurd (below zero always are)
    reader: Reader
    windowed: bool  # True: past minutes can be read again (catch-up); False: a reading of now only


def _requests(db: Session, window: Window) -> signals.MinuteCounts:
    # The minute that has just ended may not be flushed by every process yet: windows end a minute earlier.
    settled = window.end - timedelta(minutes=1)
    return signals.window(db, start=settled - timedelta(minutes=window.minutes), end=settled)


def read_latency_p95(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    p95 = _requests(db, window).p95_seconds
    return {} if p95 is None else {"": Sample(p95)}


def read_error_rate(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    rate = _requests(db, window).error_rate
    return {} if rate is None else {"": Sample(rate)}


def read_load_fail_rate(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    found: dict[str, Sample] = {}
    asked = ("load_failures", window.start, window.end, window.min_views)
    rows = window.once(
        asked, lambda: services.warehouse.load_failures(window.start, window.end, min_views=window.min_views)
    )
    for row in rows:
        rate = row.fail_rate
        if row.scope != scope or rate is None:
            continue
        org = uuid.UUID(row.owner_org) if row.owner_org else None
        key = {GLOBAL: "", ORGANISATION: row.owner_org or "", FILE: row.file_id or ""}[scope]
        found[key] = Sample(rate, org)
    return found


def read_ingest_lag(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    """How long the oldest event not yet in the warehouse has waited in the buffer, now (0 when none waits): the
    Redis stream's pending and undelivered entries, or this process's spool. No data while the buffer is down."""
    try:
        return {"": Sample(ingest_lag_seconds(services.events, services.clock.now()))}
    except EventStreamError:
        return {}


def read_disk_free(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    stat = os.statvfs(services.settings.data_dir)
    return {"": Sample(stat.f_bavail / stat.f_blocks)} if stat.f_blocks else {}


NEVER_VERIFIED_HOURS = 1e6
# Where backup health comes from (Litestream's or pgBackRest's status); tests put a stand-in replica here.
backup_status: backup_health.StatusSource = backup_health.current_status


def _backup(services: Services, window: Window) -> backup_health.BackupHealth | None:
    if not services.settings.backup_url:
        return None
    return window.once("backup", lambda: backup_health.check(services, backup_status))


def read_backup_lag(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    health = _backup(services, window)
    lag = health.lag_seconds if health else None
    return {} if lag is None else {"": Sample(lag)}


def read_backup_verify_age(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    health = _backup(services, window)
    if health is None:
        return {}
    verified = health.last_verify
    if verified is None or not verified.ok:  # never verified, or the last verify failed: older than any schedule
        return {"": Sample(NEVER_VERIFIED_HOURS)}
    return {"": Sample((window.end - verified.at).total_seconds() / 3600)}


# delivery's links table, read without importing delivery (a sibling layer): the leak radar's suspensions
_LINKS = table("links", column("org_id", Uuid()), column("suspended_at", UtcDateTime(timezone=True)))


def read_link_suspensions(services: Services, db: Session, window: Window, scope: str) -> dict[str, Sample]:
    """Links the leak radar suspended within the window and still suspended, per organisation."""
    suspended = _LINKS.c.suspended_at
    rows = db.execute(
        select(_LINKS.c.org_id, func.count())
        .where(suspended.is_not(None), suspended >= window.start, suspended < window.end)
        .group_by(_LINKS.c.org_id)
    )
    per_org = {org_id: int(count) for org_id, count in rows}
    if scope == GLOBAL:
        return {"": Sample(float(sum(per_org.values())))}
    return {str(org_id): Sample(float(count), org_id) for org_id, count in per_org.items()}


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("latency_p95_seconds", N_("p95 request latency"), "s", (GLOBAL,), 3600, read_latency_p95, True),
        MetricSpec("error_5xx_rate", N_("share of 5xx answers"), N_("ratio"), (GLOBAL,), 1, read_error_rate, True),
        MetricSpec("load_fail_rate", N_("load_fail rate"), N_("ratio"), SCOPES, 1, read_load_fail_rate, True),
        MetricSpec("ingest_lag_seconds", N_("event ingest lag"), "s", (GLOBAL,), 7 * 86400, read_ingest_lag, False),
        MetricSpec(
            "disk_free_ratio", N_("free disk of the data dir"), N_("ratio"), (GLOBAL,), 1, read_disk_free, False
        ),
        MetricSpec(
            "backup_lag_seconds", N_("backup replication lag"), "s", (GLOBAL,), 7 * 86400, read_backup_lag, False
        ),
        MetricSpec(
            "backup_verify_age_hours",
            N_("age of the last verified backup"),
            "h",
            (GLOBAL,),
            24 * 90,
            read_backup_verify_age,
            False,
        ),
        MetricSpec(
            "link_suspensions",
            N_("links suspended by the leak radar"),
            N_("links"),
            (GLOBAL, ORGANISATION),
            1e6,
            read_link_suspensions,
            True,
        ),
    )
}
