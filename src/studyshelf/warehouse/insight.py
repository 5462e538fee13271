"""The SQL of a file's or a folder's performance page, written once for DuckDB and PostgreSQL (like query.py).

One scan groups the query's events five ways with GROUPING SETS: by audience and error class (who fails, and
how), by load-time bucket, by version, by placement (link, LMS, course, resource link) and by file. Each row
says which set it is in (`g`: 'a', 'h', 'v', 'p', 'f').
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from studyshelf.warehouse.interface import (
    LOAD_BUCKETS_MS,
    FailureRow,
    Insight,
    Metrics,
    PlacementRow,
    SummaryQuery,
    VersionRow,
)
from studyshelf.warehouse.query import METRICS_SQL, TABLE, metrics, where
from studyshelf.warehouse.rollup import _bucket_case as bucket_case  # the rollups' histogram buckets, shared

# Grouping column → its expression; every name and expression is a constant of ours.
_COLUMNS: Final = {
    "a_browser": "browser",
    "a_major": "browser_major",
    "a_os": "os",
    "a_device": "device",
    "a_country": "country",
    "a_error": "error_class",
    "h": bucket_case(),
    "v": "coalesce(CAST(version_id AS VARCHAR), '')",
    "p_link": "coalesce(link_id, '')",
    "p_lms": "lms",
    "p_course": "course",
    "p_resource": "resource_link",
    "f": "coalesce(CAST(file_id AS VARCHAR), '')",
}
_SETS: Final = (
    "(a_browser, a_major, a_os, a_device, a_country, a_error)",
    "(h)",
    "(v)",
    "(p_link, p_lms, p_course, p_resource)",
    "(f)",
)
Audience = tuple[str, str, str, str, str]  # browser, its major version, OS, device, country
_LABEL: Final = (
    "CASE WHEN GROUPING(a_error) = 0 THEN 'a' WHEN GROUPING(h) = 0 THEN 'h' "
    "WHEN GROUPING(v) = 0 THEN 'v' WHEN GROUPING(p_link) = 0 THEN 'p' ELSE 'f' END"
)


def insight_sql(query: SummaryQuery, table: str = TABLE, *, postgres: bool = False) -> tuple[str, list[Any]]:
    """Rows of (g, the grouping columns…, METRICS_SQL…, first ts, last ts) for the query's events."""
    clause, params = where(query, table, postgres=postgres)
    inner = "SELECT *" + "".join(f", {expression} AS {name}" for name, expression in _COLUMNS.items()) + f" {clause}"
    sql = (
        f"SELECT {_LABEL} AS g, {', '.join(_COLUMNS)}, {METRICS_SQL}, min(ts) AS first_ts, max(ts) AS last_ts "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        f"FROM ({inner}) AS s GROUP BY GROUPING SETS ({', '.join(_SETS)})"
    )
    return sql, params


def insight(rows: list[tuple[Any, ...]], *, as_utc: Callable[[datetime], datetime]) -> Insight:
    """Assemble the rows of insight_sql."""
    width = len(_COLUMNS) + 1
    audiences: dict[Audience, list[tuple[str, Metrics]]] = defaultdict(list)
    histogram = [0] * (len(LOAD_BUCKETS_MS) + 1)
    versions: list[VersionRow] = []
    placements: list[PlacementRow] = []
    files: list[tuple[str, Metrics]] = []
    for row in rows:
        g, browser, major, os, device, country, error, bucket, version, link, lms, course, resource, file = row[:width]
        m = metrics(row[width : width + 9])
        first, last = row[width + 9], row[width + 10]
        if g == "a":
            audiences[(browser, major, os, device, country)].append((error, m))
        elif g == "h" and bucket is not None and int(bucket) >= 0:
            histogram[int(bucket)] = m.load_ok
        elif g == "v" and version:
            versions.append(VersionRow(version, m, as_utc(first), as_utc(last)))
        elif g == "p" and (link or course or resource):
            placements.append(PlacementRow(link, lms, course, resource, m))
        elif g == "f" and file:
            files.append((file, m))
    failures, loads = _failures(audiences)
    return Insight(
        failures=failures,
        loads=loads,
        histogram=tuple(histogram),
        versions=sorted(versions, key=lambda v: (v.first_seen, v.version_id)),
        placements=sorted(placements, key=lambda p: (-p.metrics.views, -p.metrics.fails, p.link_id, p.course)),
        files=sorted(files, key=lambda f: (-f[1].views, f[0])),
    )


def _failures(audiences: dict[Audience, list[tuple[str, Metrics]]]) -> tuple[list[FailureRow], list[FailureRow]]:
    """Failure rows per (audience, error class), each with its audience's loads, and one row per audience."""
    failures: list[FailureRow] = []
    loads: list[FailureRow] = []
    for (browser, major, os, device, country), by_error in audiences.items():
        attempts = sum(m.load_ok + m.fails for _error, m in by_error)
        if not attempts:
            continue
        fails = sum(m.fails for _error, m in by_error)
        loads.append(FailureRow(browser, major, os, device, country, "", fails, attempts))
        failures += [
            FailureRow(browser, major, os, device, country, error, m.fails, attempts)
            for error, m in by_error
            if m.fails
        ]
    order: Callable[[FailureRow], tuple[Any, ...]] = lambda r: (-r.fails, -r.attempts, r.browser, r.browser_major)  # noqa: E731 - one sort key for both lists
    return sorted(failures, key=order), sorted(loads, key=order)
