"""An organisation's daily report, built from the rollups of one day in its time zone, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.labels import Label, label_items
from studyshelf.analytics.reports.models import DailyRollup, ReportDelivery, RolledDay
from studyshelf.analytics.reports.org_settings import time_zone_of, zone
from studyshelf.analytics.reports.schemas import (
    DailyReport,
    DayStatus,
    ItemRow,
    OrgRef,
    ReportMetrics,
    ReportRow,
)
from studyshelf.core.clock import as_utc
from studyshelf.core.csvsafe import csv_safe
from studyshelf.core.errors import Invalid, NotFound
from studyshelf.partners.models import Organization
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal

# Report section → rollup dimension.
SECTIONS = {
    "files": "file",
    "folders": "folder",
    "countries": "country",
    "browsers": "browser",
    "categories": "category",
    "extensions": "extension",
}
CSV_COLUMNS = (
    "day",
    "section",
    "key",
    "name",
    "path",
    "owner",
    "views",
    "viewers",
    "load_ok",
    "fails",
    "fail_rate",
    "downloads",
    "blocked",
    "bytes",
)
MAX_LIST_DAYS = 366
UNKNOWN = {"country": "Unknown", "browser": "Unknown", "category": "Other", "extension": "(none)"}


class ReportNotReady(NotFound):
    type_slug = "report-not-ready"
    title = "Report not ready"


def _metrics(row: DailyRollup | None) -> ReportMetrics:
    if row is None:
        return ReportMetrics(views=0, viewers=0, load_ok=0, fails=0, fail_rate=None, downloads=0, blocked=0, bytes=0)
    loads = row.load_ok + row.fails
    return ReportMetrics(
        views=row.views,
        viewers=row.viewers,
        load_ok=row.load_ok,
        fails=row.fails,
        fail_rate=round(row.fails / loads, 4) if loads else None,
        downloads=row.downloads,
        blocked=row.blocked,
        bytes=row.bytes,
    )


def _ordered(rows: list[DailyRollup]) -> list[DailyRollup]:
    return sorted(rows, key=lambda r: (-r.views, -r.fails, -r.downloads, r.value))


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """The first instant of the day and of the next, in the time zone (23 or 25 hours apart around DST)."""
    tz = zone(time_zone)
    return datetime.combine(day, time(), tz), datetime.combine(day + timedelta(days=1), time(), tz)


def today_in(time_zone: str, now: datetime) -> date:
    """The calendar day that `now` falls on in the time zone."""
    return now.astimezone(zone(time_zone)).date()


def rolled_day(db: Session, *, time_zone: str, day: date) -> RolledDay | None:
    return db.get(RolledDay, (time_zone, day))


def _item_row(row: DailyRollup, label: Label | None) -> ItemRow:
    label = label or Label(f"({row.dim} unknown)", "", "", False)
    return ItemRow(
        key=row.value,
        name=label.name,
        path=label.path,
        owner=label.owner,
        deleted=label.deleted,
        **_metrics(row).model_dump(),
    )


def build_report(db: Session, *, org_id: uuid.UUID, day: date, now: datetime) -> DailyReport:
    """The report of one day of the organisation's time zone; ReportNotReady until that day is rolled up."""
    org = db.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organisation.")
    time_zone = time_zone_of(db, org_id=org_id)
    rolled = rolled_day(db, time_zone=time_zone, day=day)
    if rolled is None:
        raise ReportNotReady(
            f"The report for {day.isoformat()} ({time_zone}) is not ready yet: days are rolled up after they end.",
            day=day.isoformat(),
            time_zone=time_zone,
        )
    rows = db.scalars(
        select(DailyRollup).where(
            DailyRollup.scope == str(org_id),
            DailyRollup.tz == time_zone,
            DailyRollup.day == day,
            DailyRollup.dim.in_(["", *SECTIONS.values()]),
        )
    )
    by_dim: dict[str, list[DailyRollup]] = defaultdict(list)
    for row in rows:
        by_dim[row.dim].append(row)
    files, folders = label_items(
        db,
        org_id=org_id,
        file_keys=[r.value for r in by_dim["file"]],
        folder_keys=[r.value for r in by_dim["folder"]],
        now=now,
    )

    def plain(dim: str) -> list[ReportRow]:
        return [
            ReportRow(key=r.value, name=r.value or UNKNOWN[dim], **_metrics(r).model_dump())
            for r in _ordered(by_dim[dim])
        ]

    start, end = day_bounds(day, time_zone)
    totals = by_dim[""][0] if by_dim[""] else None
    return DailyReport(
        org=OrgRef(id=org.id, name=org.name, slug=org.slug),
        day=day,
        time_zone=time_zone,
        start=start,
        end=end,
        rolled_at=as_utc(rolled.rolled_at),
        totals=_metrics(totals),
        files=[_item_row(r, files.get(r.value)) for r in _ordered(by_dim["file"])],
        folders=[_item_row(r, folders.get(r.value)) for r in _ordered(by_dim["folder"])],
        countries=plain("country"),
        browsers=plain("browser"),
        categories=plain("category"),
        extensions=plain("extension"),
    )


def get_report(db: Session, *, principal: Principal, org_id: uuid.UUID, day: date, now: datetime) -> DailyReport:
    """The report for someone who may read the organisation's analytics."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    return build_report(db, org_id=org_id, day=day, now=now)


def to_csv(report: DailyReport) -> str:
    """One table: a `section` column says which part of the report each row is (total first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    def write(section: str, metrics: ReportMetrics, key: str, name: str, path: str = "", owner: str = "") -> None:
        m = metrics
        rate = "" if m.fail_rate is None else f"{m.fail_rate:.4f}"
        texts = [csv_safe(c) for c in (report.day.isoformat(), section, key, name, path, owner)]
        writer.writerow([*texts, m.views, m.viewers, m.load_ok, m.fails, rate, m.downloads, m.blocked, m.bytes])

    write("total", report.totals, "", report.org.name)
    for section, dim in SECTIONS.items():
        for row in getattr(report, section):
            if isinstance(row, ItemRow):
                write(dim, row, row.key, row.name, row.path, row.owner)
            else:
                write(dim, row, row.key, row.name)
    return buffer.getvalue()


def filename(report: DailyReport, extension: str) -> str:
    """`studyshelf-report-<org slug>-<day>.<ext>`: sorts by day, and says whose it is."""
    return f"studyshelf-report-{report.org.slug}-{report.day.isoformat()}.{extension}"


@dataclass(frozen=True)
class DayInfo:
    day: date
    status: DayStatus
    totals: DailyRollup | None
    delivery: ReportDelivery | None


def list_days(
    db: Session,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    start: date | None,
    end: date | None,
    now: datetime,
    default_days: int = 30,
) -> tuple[str, date, date, list[DayInfo]]:
    """The organisation's days from start to end (default: the last `default_days`), newest first, with their state."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    time_zone = time_zone_of(db, org_id=org_id)
    today = today_in(time_zone, now)
    end = min(end or today, today)
    start = start or date.fromordinal(max(end.toordinal() - default_days + 1, 1))
    if start > end:
        raise Invalid("`from` is after `to` (or after today in the organisation's time zone).")
    if (end - start).days >= MAX_LIST_DAYS:
        raise Invalid(f"At most {MAX_LIST_DAYS} days per request.")
    rolled = set(db.scalars(select(RolledDay.day).where(RolledDay.tz == time_zone, RolledDay.day.between(start, end))))
    first = db.scalar(select(func.min(RolledDay.day)).where(RolledDay.tz == time_zone))
    totals = {
        r.day: r
        for r in db.scalars(
            select(DailyRollup).where(
                DailyRollup.scope == str(org_id),
                DailyRollup.tz == time_zone,
                DailyRollup.dim == "",
                DailyRollup.day.between(start, end),
            )
        )
    }
    deliveries = {
        d.day: d
        for d in db.scalars(
            select(ReportDelivery).where(ReportDelivery.org_id == org_id, ReportDelivery.day.between(start, end))
        )
    }
    days = []
    for offset in range((end - start).days + 1):
        day = end - timedelta(days=offset)
        status: DayStatus = (
            "ready"
            if day in rolled
            else "open"
            if day == today
            else "none"
            if first is None or day < first
            else "pending"
        )
        days.append(DayInfo(day, status, totals.get(day), deliveries.get(day)))
    return time_zone, start, end, days
