"""Summaries from rollups: the dashboard's figures read from a few indexed rows instead of a scan of raw events.

A summary is answered here when the rollups hold exactly what the raw warehouse would count: bots left
out, no filter, a breakdown that has rollups, day/week/month buckets, whole days of the organisation's
time zone, and every finished day of the range rolled. A file or folder filter alone is answered too when
only the totals and series are asked for: they are the rows of that file (dim `file`) or that folder's
subtree (dim `subtree`), which count exactly the events the raw filter selects. Whole calendar months
inside the range are read from the monthly rows, the other days from the daily rows; today (not
finished, so not rolled) is aggregated live from the warehouse for this organisation alone. Anything
else returns None: raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import add
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.models import (
    HISTOGRAM_COLUMNS,
    LOAD_BUCKETS_MS,
    METRIC_COLUMNS,
    ROLLUP_DIMENSIONS,
    DailyRollup,
    MonthlyRollup,
    ReportSettings,
)
from studyshelf.analytics.reports.rollup import UTC_ZONE, today, window, zone
from studyshelf.core.db import as_date, driver_rows
from studyshelf.core.errors import Invalid
from studyshelf.warehouse import Metrics, RollupRow, Summary, SummaryQuery, Warehouse

TOP: Final = 10
MANY_VALUES: Final = frozenset({"file", "folder", "subtree", "course", "link"})  # ranked first, then read
SUMMED: Final = (*METRIC_COLUMNS, *HISTOGRAM_COLUMNS)
_BUCKETS: Final = frozenset({"day", "week", "month"})
# A filter whose events are one rollup row per day: the file's own, or every file under the folder's.
_FILTER_ROWS: Final = {"file": "file", "folder": "subtree"}
Sums = list[int]  # the SUMMED columns in order


def org_time_zone(db: Session, org_id: Any) -> str:
    """The zone whose days an organisation's figures use (ReportSettings; UTC by default)."""
    name = db.scalar(select(ReportSettings.time_zone).where(ReportSettings.org_id == org_id))
    if not name:
        return UTC_ZONE
    try:
        zone(name)
    except Invalid:
        return UTC_ZONE
    return name


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """Estimate a load-time percentile from the histogram (linear within a bucket; the open bucket at its floor)."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = 0 if i == 0 else LOAD_BUCKETS_MS[i - 1]
            if i == len(LOAD_BUCKETS_MS):
                return float(low)
            return low + (LOAD_BUCKETS_MS[i] - low) * (rank - seen) / count
        seen += count
    return float(LOAD_BUCKETS_MS[-1])


def metrics(sums: Sequence[int]) -> Metrics:
    values = dict(zip(SUMMED, sums, strict=True))
    histogram = [values[name] for name in HISTOGRAM_COLUMNS]
    return Metrics(
        views=values["views"],
        viewers=values["viewers"],
        load_ok=values["load_ok"],
        fails=values["fails"],
        downloads=values["downloads"],
        blocked=values["blocked"],
        bytes=values["bytes"],
        load_p50_ms=percentile(histogram, 0.5),
        load_p95_ms=percentile(histogram, 0.95),
    )


def add_sums(into: dict[Any, Sums], key: Any, sums: Sequence[int]) -> None:
    current = into.get(key)
    into[key] = list(sums) if current is None else list(map(add, current, sums))


def row_sums(row: RollupRow) -> list[int]:
    return [getattr(row, name) for name in METRIC_COLUMNS] + list(row.histogram)


def add_rows(
    into: dict[Any, Sums], rows: Iterable[Sequence[Any]], *, key: Callable[[Sequence[Any]], Any], skip: int
) -> None:
    """Add each row's sums (its columns after the first `skip`) into `into` under `key(row)`, column-wise."""
    grouped: dict[Any, list[Sequence[Any]]] = {}
    for row in rows:
        grouped.setdefault(key(row), []).append(row)
    for name, members in grouped.items():
        add_sums(into, name, [sum(column) for column in list(zip(*members, strict=True))[skip:]])


def bucket_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _whole_months(first: date, last: date) -> list[date]:
    """The months lying entirely within [first, last]."""
    months: list[date] = []
    month = first if first.day == 1 else (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    while True:
        following = (month + timedelta(days=32)).replace(day=1)
        if following - timedelta(days=1) > last:
            return months
        months.append(month)
        month = following


def _day_ranges(first: date, last: date, months: list[date]) -> list[tuple[date, date]]:
    if not months:
        return [(first, last)]
    after = (months[-1] + timedelta(days=32)).replace(day=1)
    ranges = [(first, months[0] - timedelta(days=1)), (after, last)]
    return [(a, b) for a, b in ranges if a <= b]


def totals_row(query: SummaryQuery) -> tuple[str, str] | None:
    """The (dim, value) of the rollup rows holding the query's totals: ("", "") without filters, the file's or
    the folder subtree's rows for a lone file or folder filter (totals and series only), else None."""
    if not query.filters:
        return "", ""
    if len(query.filters) != 1 or query.parts - {"totals", "series"}:
        return None
    [(name, value)] = query.filters.items()
    dim = _FILTER_ROWS.get(name)
    return None if dim is None else (dim, value)


def answerable(query: SummaryQuery) -> bool:
    """Whether the rollups can hold this query's answer at all (the days' state is checked later)."""
    return (
        query.scope_org is not None
        and not query.include_bots
        and totals_row(query) is not None
        and (query.breakdown is None or query.breakdown in ROLLUP_DIMENSIONS)
        and query.bucket in _BUCKETS
    )


def summary_from_rollups(db: Session, warehouse: Warehouse, query: SummaryQuery, *, now: datetime) -> Summary | None:
    """The summary from rollups (plus today's live events), or None when only raw events can answer it."""
    if not answerable(query) or query.scope_org is None:
        return None
    found = rolled_range(db, query, now=now)
    if found is None:
        return None
    tz, scope = query.tz, query.scope_org
    first, last, current, rolled_last = found.first, found.last, found.today, found.rolled_last
    total = totals_row(query)
    assert total is not None  # answerable
    dims = (["file", "folder"] if "top" in query.parts else []) + (
        [query.breakdown] if query.breakdown and "breakdown" in query.parts else []
    )
    series: dict[date, Sums] = {}
    groups: dict[tuple[str, str], Sums] = {}
    live: list[RollupRow] = []
    if last >= current:
        live_start = max(query.start, window(tz, current)[0])
        live_dims = [*dims, total[0]] if total[0] else dims
        live = warehouse.rollup(live_start, query.end, orgs=[scope], platform=False, dims=live_dims)
    if rolled_last >= first:
        seen_today = {(row.dim, row.value) for row in live if row.dim}
        _read_rolled(db, query, first=first, last=rolled_last, dims=dims, also=seen_today, series=series, groups=groups)
    for row in live:
        if (row.dim, row.value) == total:
            add_sums(series, bucket_of(max(first, current), query.bucket), row_sums(row))
        elif row.dim in dims:  # with a file or folder filter, no dims: today's other rows are not this one's
            add_sums(groups, (row.dim, row.value), row_sums(row))
    return assemble(query, z_name=tz, series=series, groups=groups)


@dataclass(frozen=True)
class RolledRange:
    first: date  # the query's days, in its zone
    last: date
    today: date  # not rolled: read live from the warehouse when in the range
    rolled_last: date  # the last rolled day of the range (before `first` when none is)


def rolled_range(db: Session, query: SummaryQuery, *, now: datetime) -> RolledRange | None:
    """The query's days when it covers whole days of its zone and every finished one is rolled, else None."""
    tz = query.tz
    z = zone(tz)
    first = query.start.astimezone(z).date()
    last = (query.end.astimezone(z) - timedelta(microseconds=1)).date()
    if window(tz, first)[0] != query.start or window(tz, last)[1] != query.end or last < first:
        return None  # not whole days of this zone
    current = today(tz, now)
    rolled_last = min(last, current - timedelta(days=1))
    if rolled_last >= first and not _all_rolled(db, tz=tz, first=first, last=rolled_last):
        return None
    return RolledRange(first, last, current, rolled_last)


def _all_rolled(db: Session, *, tz: str, first: date, last: date) -> bool:
    """Whether every finished day of [first, last] is rolled. Days before the zone's first rolled day count as
    rolled and empty: the job starts at the day of the oldest event (older events added later need
    `studyshelf reports backfill`)."""
    sql = "SELECT min(day), count(CASE WHEN day BETWEEN ? AND ? THEN 1 END) FROM analytics_rolled_days WHERE tz = ?"
    [(oldest, have)] = driver_rows(db, sql, [first, last, tz])  # an aggregate: always one row
    if oldest is None:
        return False
    oldest = as_date(oldest)
    start = max(first, oldest)  # no day before the oldest is rolled, so `have` counts from `start`
    return start > last or have == (last - start).days + 1


def _read_rolled(
    db: Session,
    query: SummaryQuery,
    *,
    first: date,
    last: date,
    dims: list[str],
    also: set[tuple[str, str]],
    series: dict[date, Sums],
    groups: dict[tuple[str, str], Sums],
) -> None:
    """Add the rolled days' figures to `series` (per bucket) and `groups` (per dimension and value).

    A dimension with many values (files, folders, courses, links) is read in two steps: rank its values by
    views and bytes (from the index alone), then read whole rows for the leading ones and those `also` names
    (values seen today, which may overtake). The leaders over the range are always among them: any other
    value is behind at least `limit` values on the rolled days and has nothing today to catch up with.
    """
    assert query.scope_org is not None
    months = _whole_months(first, last)
    if query.parts & {"totals", "series"}:
        total = totals_row(query)
        assert total is not None  # answerable
        totals = _read_series(
            db,
            scope=query.scope_org,
            tz=query.tz,
            first=first,
            last=last,
            months=months,
            bucket=query.bucket,
            total=total,
        )
        add_rows(series, totals, key=lambda row: bucket_of(row[0], query.bucket), skip=1)
    days = _day_ranges(first, last, months)
    where: dict[str, Any] = {"scope": query.scope_org, "tz": query.tz, "days": days, "months": months}
    few = [dim for dim in dims if dim not in MANY_VALUES]
    rows = _read_dims(db, dims=few, **where) if few else []
    for dim in dict.fromkeys(dims):  # a breakdown by file is also the top files: once
        if dim in MANY_VALUES:
            wanted = max(TOP, query.limit if dim == query.breakdown else 0) + 1  # +1: '' is not a top file
            leaders = set(_leading_values(db, dims=[dim], limit=wanted, **where))
            values = sorted(leaders | {value for d, value in also if d == dim})
            for start in range(0, len(values), 500):  # bounded IN lists
                rows += _read_dims(db, dims=[dim], values=values[start : start + 500], **where)
    for dim, value, *sums in rows:
        add_sums(groups, (dim, value), sums)


def assemble(
    query: SummaryQuery, *, z_name: str, series: dict[date, Sums], groups: dict[tuple[str, str], Sums]
) -> Summary:
    z = zone(z_name)
    totals = [sum(column) for column in zip(*series.values(), strict=True)]

    def ranked(dim: str, limit: int, *, named: bool) -> list[tuple[str, Metrics]]:
        found = [(value, sums) for (d, value), sums in groups.items() if d == dim and (value or not named)]
        found.sort(key=lambda item: (-item[1][0], -item[1][6], item[0]))  # views, bytes, key (as raw)
        return [(value, metrics(sums)) for value, sums in found[:limit]]

    parts = query.parts
    return Summary(
        totals=metrics(totals) if totals and "totals" in parts else Metrics(),
        series=[
            (datetime.combine(key, time(), z).astimezone(UTC), metrics(sums)) for key, sums in sorted(series.items())
        ]
        if "series" in parts
        else [],
        breakdown=ranked(query.breakdown, query.limit, named=False) if query.breakdown and "breakdown" in parts else [],
        top_files=ranked("file", TOP, named=True),
        top_folders=ranked("folder", TOP, named=True),
        source="rollups",
    )


def _read_series(
    db: Session,
    *,
    scope: str,
    tz: str,
    first: date,
    last: date,
    months: list[date],
    bucket: str,
    total: tuple[str, str] = ("", ""),
) -> list[tuple[Any, ...]]:
    """The totals per day as (day, sums…) of the scope, or of its `total` (dim, value) rows (a file's, a
    subtree's); whole months from the monthly rows when the series is monthly."""
    months = months if bucket == "month" else []
    days = _day_ranges(first, last, months)
    dim, value = total
    sql, params = _rows_sql(
        f"{{period}}, {_COLUMNS}",
        scope=scope,
        tz=tz,
        dims=[dim],
        days=days,
        months=months,
        values=[value] if dim else None,
    )
    return [(as_date(row[0]), *row[1:]) for row in driver_rows(db, sql, params)]


def _read_dims(db: Session, **where: Any) -> list[tuple[Any, ...]]:
    """Per (dim, value): the sums over whole months (monthly rows) and the other days (daily rows)."""
    rows, params = _rows_sql(f"dim, value, {_COLUMNS}", **where)
    sql = f"SELECT dim, value, {SUMS} FROM ({rows}) AS r GROUP BY dim, value"  # noqa: S608 - our SQL and marks
    return driver_rows(db, sql, params)


def _leading_values(db: Session, *, limit: int, **where: Any) -> list[str]:
    """The `limit` values of a dimension with the most views (then bytes) over the range: read from the index."""
    rows, params = _rows_sql("value, views, bytes", **where)
    order = "ORDER BY sum(views) DESC, sum(bytes) DESC, value"
    sql = f"SELECT value FROM ({rows}) AS r GROUP BY value {order} LIMIT ?"  # noqa: S608 - our SQL and marks
    return [value for (value,) in driver_rows(db, sql, [*params, limit])]


# The rollup reads are the dashboard's hot path: plain SQL (the same on SQLite and PostgreSQL) run on the
# session's connection, so a read of a few rows costs the database's time, not SQLAlchemy's.
_COLUMNS: Final = ", ".join(SUMMED)
SUMS: Final = ", ".join(f"CAST(sum({c}) AS BIGINT)" for c in SUMMED)  # PostgreSQL's sum of bigint is numeric


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _rows_sql(
    columns: str,
    *,
    scope: str,
    tz: str,
    dims: Sequence[str],
    days: list[tuple[date, date]],
    months: list[date],
    values: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """SELECT `columns` ({period} is the day or month) of the daily rows of the day ranges and the monthly
    rows of the whole months, of `dims` ("" for the totals), and only of `values` when given.

    One SELECT a day range: an OR of ranges cannot bound an index scan, and a 90-day range split around its
    whole months has two (ranking files over 90 days then read every file row of the scope: 77 ms, not 39)."""
    parts: list[str] = []
    params: list[Any] = []
    only = f" AND value IN ({_marks(values)})" if values is not None else ""
    for table, period, condition, bounds in (
        *((DailyRollup.__tablename__, "day", "day BETWEEN ? AND ?", list(pair)) for pair in days),
        *([(MonthlyRollup.__tablename__, "month", f"month IN ({_marks(months)})", months)] if months else []),
    ):
        where = f"scope = ? AND tz = ? AND dim IN ({_marks(dims)}) AND {condition}{only}"
        parts.append(f"SELECT {columns.format(period=period)} FROM {table} WHERE {where}")  # noqa: S608 - no values
        params += [scope, tz, *dims, *bounds, *(values or [])]
    return " UNION ALL ".join(parts), params
