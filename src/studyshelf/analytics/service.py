"""Who may see which usage: an organisation sees usage of its own content, and its own usage of others'."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from studyshelf.analytics.reports import audience, read
from studyshelf.analytics.reports.rollup import UTC_ZONE, window, zone
from studyshelf.core.errors import Invalid, Unavailable
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import (
    ALL_PARTS,
    DIMENSIONS,
    Bucket,
    Part,
    Summary,
    SummaryQuery,
    Warehouse,
    WarehouseError,
)

MAX_RANGE_DAYS = 732


def default_bucket(days: int) -> Bucket:
    """The series' bucket for a period of `days` days: hours for a day or two, days up to a quarter, then weeks."""
    return "hour" if days <= 2 else "day" if days <= 92 else "week"


def build_query(
    *,
    org_id: uuid.UUID,
    start: date,
    end: date,
    filters: dict[str, str],
    breakdown: str | None,
    bucket: Bucket | None,
    tz: str = UTC_ZONE,
    parts: frozenset[Part] = ALL_PARTS,
) -> SummaryQuery:
    """The warehouse query for an organisation's summary (dates inclusive, days of the time zone `tz`)."""
    if end < start:
        raise Invalid("`to` is before `from`.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid(f"At most {MAX_RANGE_DAYS} days per query.")
    if breakdown is not None and breakdown not in DIMENSIONS:
        raise Invalid(f"breakdown is one of: {', '.join(sorted(DIMENSIONS))}.")
    for name, value in filters.items():
        if name in {"partner", "owner", "file", "folder"}:
            try:
                uuid.UUID(value)
            except ValueError as exc:
                raise Invalid(f"{name} must be an id.") from exc
    days = (end - start).days + 1
    zone(tz)
    return SummaryQuery(
        start=window(tz, start)[0],
        end=window(tz, end)[1],
        tz=tz,
        scope_org=str(org_id),
        filters=filters,
        breakdown=breakdown,
        bucket=bucket or default_bucket(days),
        parts=parts,
    )


def time_zone(db: Session, *, org_id: uuid.UUID) -> str:
    """The time zone whose days an organisation's figures count in (its report settings; UTC by default)."""
    return read.org_time_zone(db, org_id)


def summarise(
    warehouse: Warehouse,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    query: SummaryQuery,
    now: datetime,
    db: Session | None = None,
) -> Summary:
    """Totals, series, breakdown and the top files and folders, within the organisation's scope.

    With a database session, from the rollups when they hold the answer (reports/read.py, reports/audience.py),
    else from raw events.
    """
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    if query.scope_org != str(org_id):
        raise Invalid("The query is not scoped to this organisation.")
    try:
        if db is not None:
            found = read.summary_from_rollups(db, warehouse, query, now=now)
            found = found or audience.summary_from_audience(db, warehouse, query, now=now)
            if found is not None:
                return found
        return warehouse.summary(query)
    except WarehouseError as exc:
        raise Unavailable("Usage figures are not available right now; try again shortly.") from exc


LIVE_MINUTES = 30


def live_window(now: datetime) -> tuple[datetime, datetime]:
    """The live panel's window: the last LIVE_MINUTES whole minutes up to and including the current one."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(minutes=LIVE_MINUTES), end


def live_query(*, org_id: uuid.UUID, filters: dict[str, str], now: datetime) -> SummaryQuery:
    start, end = live_window(now)
    return SummaryQuery(
        start=start,
        end=end,
        scope_org=str(org_id),
        filters=filters,
        bucket="minute",
        parts=frozenset({"totals", "series", "top"}),
    )


def live_summary(
    warehouse: Warehouse, *, principal: Principal, org_id: uuid.UUID, filters: dict[str, str], now: datetime
) -> Summary:
    """The last half hour by minute, with its top files, from raw events: one scan of a short, indexed time range
    (PostgreSQL's key leads with ts; DuckDB's row groups are skipped by their ts zone maps)."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    try:
        return warehouse.summary(live_query(org_id=org_id, filters=filters, now=now))
    except WarehouseError as exc:
        raise Unavailable("Live figures are not available right now; try again shortly.") from exc
