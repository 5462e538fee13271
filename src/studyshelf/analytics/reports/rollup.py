"""Rolling finished days up: warehouse aggregates in, rollup rows of the application database out.

A day is a calendar day of a time zone. UTC days are rolled for every organisation and the platform; the
days of another zone for the organisations whose ReportSettings name it. Rolling a day replaces its rows in
one transaction, so it can be repeated at will (late events, backfills), and re-sums its month.
"""

from __future__ import annotations

import logging
import time as monotonic
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, delete, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.models import (
    HISTOGRAM_COLUMNS,
    METRIC_COLUMNS,
    PLATFORM_SCOPE,
    AudienceRollup,
    DailyRollup,
    MonthlyRollup,
    ReportSettings,
    RolledDay,
)
from studyshelf.core import lease
from studyshelf.core.clock import as_utc
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Conflict, Invalid
from studyshelf.services import Services
from studyshelf.warehouse import AUDIENCE_SEPARATOR, RollupRow

log = logging.getLogger("studyshelf.analytics.rollups")
UTC_ZONE: Final = "UTC"
# A rolled day is rolled once more when this much time has passed since it ended, so events that waited in
# the buffer (a worker down, a backlog) are counted; after that it is settled.
SETTLE: Final = timedelta(hours=1)
JOB_BUDGET: Final = timedelta(minutes=20)  # below the scheduler's 30-minute lease; the next pass goes on
# The scheduler's job name, and the lease the CLI takes too: the CLI and the scheduler of any app instance
# never roll days at the same time.
ROLLUPS_JOB: Final = "analytics.rollups"
LEASE_TTL: Final = timedelta(minutes=30)  # as long as the scheduler's own lease: a crashed holder blocks no longer
_SUMMED: Final = (*METRIC_COLUMNS, *HISTOGRAM_COLUMNS)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`, or Invalid."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC.") from exc


def window(tz: str, day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a calendar day in a time zone (23 or 25 hours on DST changes)."""
    z = zone(tz)
    start = datetime.combine(day, time(), z).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), z).astimezone(UTC)
    return start, end


def today(tz: str, now: datetime) -> date:
    """The calendar day that `now` falls on in a time zone."""
    return now.astimezone(zone(tz)).date()


def time_zones(db: Session) -> list[str]:
    """The zones whose days are rolled: UTC and every zone an organisation has chosen."""
    chosen = set(db.scalars(select(ReportSettings.time_zone).distinct()).all()) - {UTC_ZONE}
    return [UTC_ZONE, *sorted(name for name in chosen if _known(name))]


def _known(name: str) -> bool:
    try:
        zone(name)
    except Invalid:
        log.warning("organisations chose an unknown time zone %r; their days are not rolled", name)
        return False
    return True


def scope_orgs(db: Session, tz: str) -> list[str] | None:
    """The organisations rolled in a zone: None (every one) for UTC, else those that chose the zone."""
    if tz == UTC_ZONE:
        return None
    ids = db.scalars(select(ReportSettings.org_id).where(ReportSettings.time_zone == tz)).all()
    return [str(i) for i in ids]


def roll_day(services: Services, tz: str, day: date, *, now: datetime | None = None) -> int:
    """Aggregate one day of a zone from the warehouse and replace its rollups; return the rows written."""
    start, end = window(tz, day)
    with unit_of_work(services.read_sessions) as db:
        orgs = scope_orgs(db, tz)
    rows = [] if orgs == [] else services.warehouse.rollup(start, end, orgs=orgs, platform=tz == UTC_ZONE)
    with unit_of_work(services.write_sessions) as db:
        write_day(db, tz=tz, day=day, rows=rows, now=now or services.clock.now())
    return len(rows)


def _events(rows: Sequence[RollupRow]) -> int:
    """Events rolled: the platform's total in UTC; elsewhere per organisation (shared events count for each)."""
    totals = [r for r in rows if r.dim == ""]
    platform = [r for r in totals if r.scope == PLATFORM_SCOPE]
    return sum(r.views + r.load_ok + r.fails + r.downloads + r.blocked for r in (platform or totals))


def write_day(db: Session, *, tz: str, day: date, rows: Sequence[RollupRow], now: datetime) -> None:
    """Replace a day's rollups, move its month by the difference and mark the day rolled (one transaction:
    the caller's). The month is adjusted by the old day's rows out and the new ones in, so rolling a day
    costs its own rows, not the month's."""
    month = day.replace(day=1)
    cells = [r for r in rows if r.dim == "audience"]
    rows = [r for r in rows if r.dim != "audience"]
    _add_to_month(db, tz=tz, day=day, month=month, sign=-1)
    db.execute(delete(DailyRollup).where(DailyRollup.tz == tz, DailyRollup.day == day))
    if rows:
        db.execute(insert(DailyRollup), [_values(r, tz=tz, day=day) for r in rows])
    db.execute(delete(AudienceRollup).where(AudienceRollup.tz == tz, AudienceRollup.day == day))
    if cells:
        db.execute(insert(AudienceRollup), [_cell(r, tz=tz, day=day) for r in cells])
    _add_to_month(db, tz=tz, day=day, month=month, sign=1)
    zero = [getattr(MonthlyRollup, name) == 0 for name in METRIC_COLUMNS]
    db.execute(delete(MonthlyRollup).where(MonthlyRollup.tz == tz, MonthlyRollup.month == month, *zero))
    rolled = db.get(RolledDay, (tz, day))
    if rolled is None:
        db.add(RolledDay(tz=tz, day=day, events=_events(rows), rolled_at=now))
    else:
        rolled.events = _events(rows)
        rolled.rolled_at = now
    db.flush()


def _add_to_month(db: Session, *, tz: str, day: date, month: date, sign: int) -> None:
    """Add (sign 1) or take away (sign -1) the day's stored rollup rows to or from its month's rows."""
    upsert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    keys = (DailyRollup.tz, DailyRollup.scope, DailyRollup.dim, DailyRollup.value)
    amounts = [getattr(DailyRollup, name) * sign for name in _SUMMED]
    statement = upsert(MonthlyRollup).from_select(
        ["month", "tz", "scope", "dim", "value", *_SUMMED],
        select(literal(month, Date), *keys, *amounts).where(DailyRollup.tz == tz, DailyRollup.day == day),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["tz", "scope", "dim", "value", "month"],
        set_={name: getattr(MonthlyRollup, name) + getattr(excluded, name) for name in _SUMMED},
    )
    db.execute(statement)


def _cell(row: RollupRow, *, tz: str, day: date) -> dict[str, Any]:
    """An audience row as the columns of its cell."""
    country, browser, os, device = [*row.value.split(AUDIENCE_SEPARATOR), "", "", "", ""][:4]
    cell = {"country": country[:8], "browser": browser[:255], "os": os[:255], "device": device[:16]}
    values = _values(row, tz=tz, day=day)
    del values["dim"], values["value"]
    return {**values, **cell}


def _values(row: RollupRow, *, tz: str, day: date) -> dict[str, Any]:
    values: dict[str, Any] = {
        "tz": tz,
        "day": day,
        "scope": row.scope,
        "dim": row.dim,
        "value": row.value,
        "views": row.views,
        "viewers": row.viewers,
        "load_ok": row.load_ok,
        "fails": row.fails,
        "downloads": row.downloads,
        "blocked": row.blocked,
        "bytes": row.bytes,
        "load_ms_sum": row.load_ms_sum,
    }
    values.update(zip(HISTOGRAM_COLUMNS, row.histogram, strict=True))
    return values


def pending(services: Services, *, now: datetime | None = None) -> list[tuple[str, date]]:
    """The (zone, day) pairs to roll now, oldest first per zone.

    Every finished day from the zone's first rolled day (or, the first time, the day of the oldest event)
    up to yesterday that is not rolled yet, and rolled days that ended more than SETTLE ago but were rolled
    before that (once more, for late events).
    """
    now = now or services.clock.now()
    with unit_of_work(services.read_sessions) as db:
        zones = time_zones(db)
        rolled = {
            tz: {
                r.day: r.rolled_at
                for r in db.execute(select(RolledDay.day, RolledDay.rolled_at).where(RolledDay.tz == tz))
            }
            for tz in zones
        }
    earliest: datetime | None = None
    todo: list[tuple[str, date]] = []
    for tz in zones:
        done = rolled[tz]
        last = today(tz, now) - timedelta(days=1)
        if done:
            first = min(done)
        else:
            earliest = earliest or services.warehouse.earliest()
            if earliest is None:
                continue
            first = earliest.astimezone(zone(tz)).date()
        day = first
        while day <= last:
            rolled_at = done.get(day)
            if rolled_at is None:
                todo.append((tz, day))
            else:
                settled = window(tz, day)[1] + SETTLE
                if as_utc(rolled_at) < settled <= now:
                    todo.append((tz, day))
            day += timedelta(days=1)
    return todo


def catch_up(
    services: Services,
    *,
    now: datetime | None = None,
    budget: timedelta | None = None,
    progress: Callable[[str, date], None] | None = None,
) -> tuple[int, int]:
    """Roll every pending day (within the time budget, if any); return (days rolled, days still pending)."""
    now = now or services.clock.now()
    todo = pending(services, now=now)
    deadline = None if budget is None else monotonic.monotonic() + budget.total_seconds()
    for done, (tz, day) in enumerate(todo, start=1):
        roll_day(services, tz, day, now=now)
        if progress is not None:
            progress(tz, day)
        if deadline is not None and monotonic.monotonic() > deadline:  # every pass rolls a day at least
            return done, len(todo) - done
    return len(todo), 0


def rollup_job(services: Services, _memo: str) -> str:
    """The scheduled job (the scheduler holds the lease): catch up on finished days."""
    rolled, left = catch_up(services, budget=JOB_BUDGET)
    return f"rolled {rolled} days" + (f", {left} left for the next pass" if left else "")


@contextmanager
def rollups_lease(services: Services, *, holder: str | None = None) -> Iterator[lease.Lease]:
    """Hold the rollups' lease for the block (Conflict if another process has it); renew it between days."""
    holder = holder or f"cli-{uuid.uuid4().hex}"
    held = lease.acquire(services.write_sessions, ROLLUPS_JOB, holder=holder, now=services.clock.now(), ttl=LEASE_TTL)
    if held is None:
        until = lease.expiry(services.write_sessions, ROLLUPS_JOB)
        when = f" until {until:%Y-%m-%d %H:%M} UTC at the latest" if until else ""
        raise Conflict(f"Rollups are being computed by another process{when}; try again when it has finished.")
    try:
        yield held
    finally:
        lease.release(services.write_sessions, held)
