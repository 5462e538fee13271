"""The load_fail rate of a time window, for the alarms: overall, per owning organisation, and per file.

One statement for DuckDB and PostgreSQL alike (`?` placeholders, UTC times): the window's non-bot views, loads
and failed loads grouped by GROUPING SETS, so the three scopes cost one scan of the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from studyshelf.warehouse.interface import LoadFailures
from studyshelf.warehouse.query import TABLE

LOAD_FAILURES_SQL: Final = f"""
SELECT
    GROUPING(owner_org, file_id) AS level,
    CAST(owner_org AS VARCHAR) AS owner,
    CAST(file_id AS VARCHAR) AS file,
    count(*) FILTER (WHERE type = 'view') AS views,
    count(*) FILTER (WHERE type = 'load_ok') AS load_ok,
    count(*) FILTER (WHERE type = 'load_fail') AS fails
FROM {TABLE}
WHERE ts >= ? AND ts < ? AND NOT bot AND type IN ('view', 'load_ok', 'load_fail')
GROUP BY GROUPING SETS ((), (owner_org), (owner_org, file_id))
"""  # noqa: S608 - the table name is a module constant; values are bound parameters
LATEST_SQL: Final = f"SELECT max(ts) FROM {TABLE}"  # noqa: S608 - a module constant
_LEVELS: Final[dict[int, Literal["global", "organisation", "file"]]] = {
    3: "global",
    1: "organisation",
    0: "file",
}  # GROUPING() bits: owner_org 2, file_id 1


def load_failures_sql(start: datetime, end: datetime) -> tuple[str, list[Any]]:
    return LOAD_FAILURES_SQL, [start, end]


def rows(found: list[tuple[Any, ...]], *, min_views: int) -> list[LoadFailures]:
    """The answer's rows as LoadFailures; files with fewer than `min_views` views are left out."""
    answer = []
    for level, owner, file, views, load_ok, fails in found:
        scope = _LEVELS[int(level)]
        if scope == "file" and (file is None or int(views) < min_views):
            continue
        if scope != "global" and owner is None:
            continue
        answer.append(LoadFailures(scope, owner, file, int(views), int(load_ok), int(fails)))
    answer.sort(key=lambda row: (row.scope, row.owner_org or "", row.file_id or ""))
    return answer
