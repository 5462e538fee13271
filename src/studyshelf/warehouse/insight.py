"""The SQL of a file's or a folder's performance page, written once for DuckDB and PostgreSQL (like query.py).

Two statements over the query's events. The loads (load_ok and load_fail only) are grouped plainly by audience,
error class and load-time bucket: counts that add up, so Python folds them into the failures by audience and
the histogram. The usage is grouped three ways with GROUPING SETS — by version, by placement (link, LMS, course,
resource link) and by file — with the full metrics (unique viewers, percentiles), each row saying which set it
is in (`g`: 'v', 'p', 'f'). One GROUPING SETS statement for all five groupings was 2-3x slower: each set with a
DISTINCT or a percentile is another pass, and the audience set is the largest.
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

_USAGE_COLUMNS: Final = {  # grouping column → its expression; every name and expression is a constant of ours
    "v": "coalesce(CAST(version_id AS VARCHAR), '')",
    "p_link": "coalesce(link_id, '')",
    "p_lms": "lms",
    "p_course": "course",
    "p_resource": "resource_link",
    "f": "coalesce(CAST(file_id AS VARCHAR), '')",
}
_USAGE_SETS: Final = "(v), (p_link, p_lms, p_course, p_resource), (f)"
_USAGE_LABEL: Final = "CASE WHEN GROUPING(v) = 0 THEN 'v' WHEN GROUPING(p_link) = 0 THEN 'p' ELSE 'f' END"
Audience = tuple[str, str, str, str, str]  # browser, its major version, OS, device, country
Statement = tuple[str, list[Any]]


def insight_sql(query: SummaryQuery, table: str = TABLE, *, postgres: bool = False) -> tuple[Statement, Statement]:
    """The loads statement — rows of (browser, major, OS, device, country, error class, load-time bucket, fails,
    successful loads) — and the usage statement — rows of (g, the usage columns…, METRICS_SQL…, first ts, last ts)."""
    clause, params = where(query, table, postgres=postgres)
    loads = (
        f"SELECT browser, browser_major, os, device, country, error_class, {bucket_case()} AS hb, "
        f"count(*) FILTER (WHERE type = 'load_fail'), count(*) FILTER (WHERE type = 'load_ok') {clause} "
        "AND type IN ('load_ok', 'load_fail') GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    columns = "".join(f", {expression} AS {name}" for name, expression in _USAGE_COLUMNS.items())
    inner = f"SELECT ts, type, viewer, bytes, load_ms{columns} {clause}"
    usage = (
        f"SELECT {_USAGE_LABEL} AS g, {', '.join(_USAGE_COLUMNS)}, {METRICS_SQL}, min(ts) AS first_ts, "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        f"max(ts) AS last_ts FROM ({inner}) AS s GROUP BY GROUPING SETS ({_USAGE_SETS})"
    )
    return (loads, list(params)), (usage, list(params))


def insight(
    loads: list[tuple[Any, ...]], usage: list[tuple[Any, ...]], *, as_utc: Callable[[datetime], datetime]
) -> Insight:
    """Assemble the rows of the two statements of insight_sql."""
    audiences: dict[Audience, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    histogram = [0] * (len(LOAD_BUCKETS_MS) + 1)
    for browser, major, os, device, country, error, bucket, fails, ok in loads:
        counts = audiences[(browser, major, os, device, country)][error if fails else ""]
        counts[0] += int(fails)
        counts[1] += int(ok)
        if ok and bucket is not None and int(bucket) >= 0:
            histogram[int(bucket)] += int(ok)
    versions: list[VersionRow] = []
    placements: list[PlacementRow] = []
    files: list[tuple[str, Metrics]] = []
    width = len(_USAGE_COLUMNS) + 1
    for row in usage:
        g, version, link, lms, course, resource, file = row[:width]
        m = metrics(row[width : width + 9])
        if g == "v" and version:
            versions.append(VersionRow(version, m, as_utc(row[width + 9]), as_utc(row[width + 10])))
        elif g == "p" and (link or course or resource):
            placements.append(PlacementRow(link, lms, course, resource, m))
        elif g == "f" and file:
            files.append((file, m))
    failures, by_audience = _failures(audiences)
    return Insight(
        failures=failures,
        loads=by_audience,
        histogram=tuple(histogram),
        versions=sorted(versions, key=lambda v: (v.first_seen, v.version_id)),
        placements=sorted(placements, key=lambda p: (-p.metrics.views, -p.metrics.fails, p.link_id, p.course)),
        files=sorted(files, key=lambda f: (-f[1].views, f[0])),
    )


def _failures(audiences: dict[Audience, dict[str, list[int]]]) -> tuple[list[FailureRow], list[FailureRow]]:
    """Failure rows per (audience, error class), each with its audience's loads, and one row per audience."""
    failures: list[FailureRow] = []
    loads: list[FailureRow] = []
    for (browser, major, os, device, country), by_error in audiences.items():
        attempts = sum(fails + ok for fails, ok in by_error.values())
        if not attempts:
            continue
        fails = sum(f for f, _ok in by_error.values())
        loads.append(FailureRow(browser, major, os, device, country, "", fails, attempts))
        failures += [
            FailureRow(browser, major, os, device, country, error, f, attempts)
            for error, (f, _ok) in by_error.items()
            if f
        ]
    order: Callable[[FailureRow], tuple[Any, ...]] = lambda r: (-r.fails, -r.attempts, r.browser, r.browser_major)  # noqa: E731 - one sort key for both lists
    return sorted(failures, key=order), sorted(loads, key=order)
