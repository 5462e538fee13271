"""The analytics SQL, written once for DuckDB and PostgreSQL (both take `?`-free text with placeholders).

Each function returns (sql, params) with `?` placeholders; the PostgreSQL backend turns them into `%s`.
Time is stored as UTC: DuckDB as TIMESTAMP, PostgreSQL as timestamptz in a UTC session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from studyshelf.events.schema import COLUMNS
from studyshelf.warehouse.interface import DIMENSIONS, Metrics, Summary, SummaryQuery

TABLE: Final = "events"
TOP: Final = 10
UUID_COLUMNS: Final = frozenset({"owner_org", "partner_org", "file_id", "version_id", "folder_id", "id"})
COUNTS_SQL: Final = """
    count(*) FILTER (WHERE type = 'view') AS views,
    count(DISTINCT viewer) FILTER (WHERE type = 'view') AS viewers,
    count(*) FILTER (WHERE type = 'load_ok') AS load_ok,
    count(*) FILTER (WHERE type = 'load_fail') AS fails,
    count(*) FILTER (WHERE type = 'download') AS downloads,
    count(*) FILTER (WHERE type = 'blocked') AS blocked,
    coalesce(sum(bytes), 0) AS bytes,"""
METRICS_SQL: Final = f"""{COUNTS_SQL}
    percentile_cont(0.5) WITHIN GROUP (ORDER BY load_ms) FILTER (WHERE type = 'load_ok') AS p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY load_ms) FILTER (WHERE type = 'load_ok') AS p95
"""
_BUCKETS: Final = frozenset({"minute", "hour", "day", "week", "month"})
_ZONE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+\-/]{0,63}")


def bucket_start(bucket: str, zone: str, *, postgres: bool) -> str:
    """SQL for the start (a UTC instant) of the bucket holding `ts`, where days begin at midnight in `zone`."""
    if zone == "UTC":
        return f"date_trunc('{bucket}', ts)"
    if not _ZONE.fullmatch(zone):
        raise ValueError(f"invalid time zone {zone!r}")
    if postgres:
        return f"date_trunc('{bucket}', ts, '{zone}')"
    # DuckDB keeps naive UTC timestamps: make them aware, truncate in the zone's local time, back to naive UTC.
    return f"timezone('UTC', timezone('{zone}', date_trunc('{bucket}', timezone('{zone}', timezone('UTC', ts)))))"


def where(query: SummaryQuery, table: str, *, postgres: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause of a query: time range, scope, bots, filters."""
    clauses = ["ts >= ?", "ts < ?"]
    params: list[Any] = [query.start, query.end]
    if query.scope_org is not None:
        clauses.append("(owner_org = CAST(? AS UUID) OR partner_org = CAST(? AS UUID))")
        params += [query.scope_org, query.scope_org]
    if not query.include_bots:
        clauses.append("NOT bot")
    for name, value in sorted(query.filters.items()):
        if name not in DIMENSIONS:
            raise ValueError(f"unknown filter {name!r}")
        column = DIMENSIONS[name]
        if name == "folder":
            # `? = ANY(folder_path)` is 8x slower than list_contains on DuckDB, and only `@>` can use
            # PostgreSQL's GIN index on folder_path (a course folder's 90 days: 2x faster there).
            clauses.append(
                "folder_path @> ARRAY[CAST(? AS UUID)]" if postgres else "list_contains(folder_path, CAST(? AS UUID))"
            )
        elif column in UUID_COLUMNS:
            clauses.append(f"{column} = CAST(? AS UUID)")
        else:
            clauses.append(f"{column} = ?")
        params.append(value)
    return f"FROM {table} WHERE " + " AND ".join(clauses), params


def summary_sql(query: SummaryQuery, table: str = TABLE, *, postgres: bool = False) -> tuple[str, list[Any]]:
    """Totals, series, breakdown and top files and folders (those of query.parts) in one scan (GROUPING SETS).

    Each row says which set it belongs to in `g`: 't' totals, 'b' series (by bucket), 'k' breakdown (by key),
    'f' files, 'd' folders. Only the sets asked for are grouped; missing values group as ''.
    """
    if query.bucket not in _BUCKETS:
        raise ValueError(f"unknown bucket {query.bucket!r}")
    if query.breakdown is not None and query.breakdown not in DIMENSIONS:
        raise ValueError(f"unknown breakdown {query.breakdown!r}")
    clause, params = where(query, table, postgres=postgres)
    parts = query.parts
    breakdown = query.breakdown if "breakdown" in parts else None
    columns = {  # grouping column → its expression, for the parts asked for
        "b": bucket_start(query.bucket, query.tz, postgres=postgres) if "series" in parts else None,
        "k": f"coalesce(CAST({DIMENSIONS[breakdown]} AS VARCHAR), '')" if breakdown else None,
        "f": "coalesce(CAST(file_id AS VARCHAR), '')" if "top" in parts else None,
        "d": "coalesce(CAST(folder_id AS VARCHAR), '')" if "top" in parts else None,
    }
    used = [name for name, expression in columns.items() if expression is not None]
    inner = "SELECT *" + "".join(f", {columns[name]} AS {name}" for name in used) + f" {clause}"
    sets = ["()"] if "totals" in parts or not used else []
    sets += [f"({name})" for name in used]
    label = "CASE " + " ".join(f"WHEN GROUPING({name}) = 0 THEN '{name}'" for name in used) + " ELSE 't' END"
    outer = ", ".join(name if name in used else f"NULL AS {name}" for name in columns)
    select = f"SELECT {label if used else repr('t')} AS g, {outer}, {METRICS_SQL}"
    sql = f"{select} FROM ({inner}) AS s GROUP BY GROUPING SETS ({', '.join(sets)})"
    return sql, params


def _ranked(rows: list[tuple[str, Metrics]], limit: int) -> list[tuple[str, Metrics]]:
    return sorted(rows, key=lambda r: (-r[1].views, -r[1].bytes, r[0]))[:limit]


def summary(rows: list[tuple[Any, ...]], query: SummaryQuery, *, as_utc: Callable[[datetime], datetime]) -> Summary:
    """Assemble the rows of summary_sql."""
    totals = Metrics()
    series: list[tuple[datetime, Metrics]] = []
    groups: dict[str, list[tuple[str, Metrics]]] = {"k": [], "f": [], "d": []}
    for row in rows:
        g, bucket, key, file_key, folder_key = row[:5]
        values = metrics(row[5:])
        if g == "t":
            totals = values if "totals" in query.parts else totals
        elif g == "b":
            series.append((as_utc(bucket), values))
        elif g in groups:
            name = {"k": key, "f": file_key, "d": folder_key}[g]
            if g == "k" or name:
                groups[g].append((str(name), values))
    return Summary(
        totals=totals,
        series=sorted(series, key=lambda item: item[0]),
        breakdown=_ranked(groups["k"], query.limit) if query.breakdown else [],
        top_files=_ranked(groups["f"], TOP),
        top_folders=_ranked(groups["d"], TOP),
    )


def metrics(row: tuple[Any, ...]) -> Metrics:
    """Metrics from the nine columns of METRICS_SQL."""
    views, viewers, ok, fails, downloads, blocked, total_bytes, p50, p95 = row
    return Metrics(
        views=int(views),
        viewers=int(viewers),
        load_ok=int(ok),
        fails=int(fails),
        downloads=int(downloads),
        blocked=int(blocked),
        bytes=int(total_bytes),
        load_p50_ms=None if p50 is None else float(p50),
        load_p95_ms=None if p95 is None else float(p95),
    )


def insert_columns() -> list[str]:
    return list(COLUMNS)
