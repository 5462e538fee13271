"""Summaries filtered on who watched: read from the audience cube of the rollups.

A viewer pseudonym fixes its day's country (from the address) and browser, OS and device (from the user
agent), so each viewer-day sits in exactly one cell of `analytics_audience_rollups`, and any set of
cells adds up to exact figures, unique viewers included. A summary is answered here when its filters
and breakdown are all audience dimensions and it needs no top files or folders; the usual conditions of
rollups hold too (no bots, day/week/month buckets, whole rolled days); today comes live from the
warehouse's own cube of today.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from studyshelf.analytics.reports.read import (
    SUMS,
    Sums,
    add_rows,
    add_sums,
    assemble,
    bucket_of,
    rolled_range,
    row_sums,
)
from studyshelf.analytics.reports.rollup import window
from studyshelf.core.db import as_date, driver_rows
from studyshelf.warehouse import AUDIENCE, AUDIENCE_SEPARATOR, Summary, SummaryQuery, Warehouse

_BUCKETS: Final = frozenset({"day", "week", "month"})


def answerable(query: SummaryQuery) -> bool:
    """Whether the audience cube can hold this query's answer (the days' state is checked later)."""
    breakdown = query.breakdown if "breakdown" in query.parts else None
    return (
        query.scope_org is not None
        and bool(query.filters)
        and set(query.filters) <= set(AUDIENCE)
        and (breakdown is None or breakdown in AUDIENCE)
        and "top" not in query.parts
        and not query.include_bots
        and query.bucket in _BUCKETS
    )


def summary_from_audience(db: Session, warehouse: Warehouse, query: SummaryQuery, *, now: datetime) -> Summary | None:
    """The summary from the audience cube (plus today's live cells), or None when it cannot answer."""
    if not answerable(query) or query.scope_org is None:
        return None
    found = rolled_range(db, query, now=now)
    if found is None:
        return None
    breakdown = query.breakdown if "breakdown" in query.parts else None
    series: dict[date, Sums] = {}
    groups: dict[tuple[str, str], Sums] = {}
    if found.rolled_last >= found.first:
        cells = _read_cells(db, query, first=found.first, last=found.rolled_last, by=breakdown)
        add_rows(series, cells, key=lambda row: bucket_of(row[0], query.bucket), skip=2)
        if breakdown:
            add_rows(groups, cells, key=lambda row: (breakdown, row[1]), skip=2)
    if found.last >= found.today:
        live_start = max(query.start, window(query.tz, found.today)[0])
        cells = warehouse.rollup(live_start, query.end, orgs=[query.scope_org], platform=False, dims=("audience",))
        for row in cells:
            if row.dim != "audience":
                continue
            cell = dict(zip(AUDIENCE, row.value.split(AUDIENCE_SEPARATOR), strict=False))
            if all(cell.get(name) == value for name, value in query.filters.items()):
                add_sums(series, bucket_of(max(found.first, found.today), query.bucket), row_sums(row))
                if breakdown:
                    add_sums(groups, (breakdown, cell.get(breakdown, "")), row_sums(row))
    return assemble(query, z_name=query.tz, series=series, groups=groups)


def _read_cells(db: Session, query: SummaryQuery, *, first: date, last: date, by: str | None) -> list[Any]:
    """(day, breakdown value or '', sums…) of the cells that match the filters, per day (and value)."""
    filters = sorted(query.filters)
    names = [*filters, *([by] if by else [])]
    if not set(names) <= set(AUDIENCE):  # they become column names
        raise ValueError(f"not audience dimensions: {names}")
    key, where = by or "''", "".join(f" AND {name} = ?" for name in filters)
    sql = (
        f"SELECT day, {key}, {SUMS} FROM analytics_audience_rollups"  # noqa: S608 - checked names, marks
        f" WHERE scope = ? AND tz = ? AND day BETWEEN ? AND ?{where} GROUP BY day" + (f", {by}" if by else "")
    )
    rows = driver_rows(db, sql, [query.scope_org, query.tz, first, last, *(query.filters[name] for name in filters)])
    return [(as_date(row[0]), *row[1:]) for row in rows]
