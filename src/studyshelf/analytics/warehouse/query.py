"""The analytics SQL, written once for DuckDB and PostgreSQL (both take `?`-free text with placeholders).

Each function returns (sql, params) with `?` placeholders; the PostgreSQL backend turns them into `%s`.
Time is stored as UTC: DuckDB as TIMESTAMP, PostgreSQL as timestamptz in a UTC session.
"""

from __future__ import annotations

from typing import Any, Final

from studyshelf.analytics.warehouse.interface import DIMENSIONS, Metrics, SummaryQuery
from studyshelf.events.schema import COLUMNS

TABLE: Final = "events"
UUID_COLUMNS: Final = frozenset({"owner_org", "partner_org", "file_id", "version_id", "folder_id", "id"})
METRICS_SQL: Final = """
    count(*) FILTER (WHERE type = 'view') AS views,
    count(DISTINCT viewer) FILTER (WHERE type = 'view') AS viewers,
    count(*) FILTER (WHERE type = 'load_ok') AS load_ok,
    count(*) FILTER (WHERE type = 'load_fail') AS fails,
    count(*) FILTER (WHERE type = 'download') AS downloads,
    count(*) FILTER (WHERE type = 'blocked') AS blocked,
    coalesce(sum(bytes), 0) AS bytes,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY load_ms) FILTER (WHERE type = 'load_ok') AS p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY load_ms) FILTER (WHERE type = 'load_ok') AS p95
"""
_BUCKETS: Final = frozenset({"hour", "day", "week", "month"})


def where(query: SummaryQuery, table: str) -> tuple[str, list[Any]]:
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
            clauses.append("CAST(? AS UUID) = ANY(folder_path)")
        elif column in UUID_COLUMNS:
            clauses.append(f"{column} = CAST(? AS UUID)")
        else:
            clauses.append(f"{column} = ?")
        params.append(value)
    return f"FROM {table} WHERE " + " AND ".join(clauses), params


def totals_sql(query: SummaryQuery, table: str = TABLE) -> tuple[str, list[Any]]:
    clause, params = where(query, table)
    return f"SELECT {METRICS_SQL} {clause}", params


def series_sql(query: SummaryQuery, table: str = TABLE) -> tuple[str, list[Any]]:
    if query.bucket not in _BUCKETS:
        raise ValueError(f"unknown bucket {query.bucket!r}")
    clause, params = where(query, table)
    bucket = f"date_trunc('{query.bucket}', ts)"
    return f"SELECT {bucket} AS bucket, {METRICS_SQL} {clause} GROUP BY 1 ORDER BY 1", params


def breakdown_sql(query: SummaryQuery, dimension: str, table: str = TABLE) -> tuple[str, list[Any]]:
    """Metrics per value of a dimension (missing values as ''), most viewed first."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown breakdown {dimension!r}")
    column = DIMENSIONS[dimension]
    key = f"coalesce(CAST({column} AS VARCHAR), '')"
    clause, params = where(query, table)
    sql = (
        f"SELECT {key} AS key, {METRICS_SQL} {clause} GROUP BY 1 "
        f"ORDER BY views DESC, bytes DESC, key LIMIT {int(query.limit)}"
    )
    return sql, params


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
