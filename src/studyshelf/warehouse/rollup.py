"""The rollup SQL, written once for DuckDB and PostgreSQL (like query.py: `?` placeholders, UTC times).

One statement aggregates a time window: the events are scoped first (an event counts for its owner, for its
partner when that is another organisation, and for the platform), then grouped per scope with GROUPING SETS
(the totals and one set per dimension), and `subtree` separately by unnesting each event's folder path.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

from studyshelf.warehouse.interface import (
    AUDIENCE,
    AUDIENCE_SEPARATOR,
    DIMENSIONS,
    LOAD_BUCKETS_MS,
    PLATFORM_SCOPE,
    ROLLUP_DIMENSIONS,
    RollupRow,
)
from studyshelf.warehouse.query import COUNTS_SQL, TABLE

_HISTOGRAM: Final = ", ".join(f"count(*) FILTER (WHERE hb = {i}) AS h{i}" for i in range(len(LOAD_BUCKETS_MS) + 1))
ROLLUP_METRICS_SQL: Final = f"""{COUNTS_SQL}
    coalesce(sum(load_ms) FILTER (WHERE type = 'load_ok'), 0) AS load_ms_sum,
    {_HISTOGRAM}
"""


def _bucket_case() -> str:
    """The histogram bucket of a successful load (-1 for every other event)."""
    whens = " ".join(f"WHEN load_ms < {bound} THEN {i}" for i, bound in enumerate(LOAD_BUCKETS_MS))
    return f"CASE WHEN type <> 'load_ok' OR load_ms IS NULL THEN -1 {whens} ELSE {len(LOAD_BUCKETS_MS)} END"


def _column(dim: str) -> str:
    return f"coalesce(CAST({DIMENSIONS[dim]} AS VARCHAR), '')"


def rollup_sql(
    start: datetime,
    end: datetime,
    *,
    orgs: Collection[str] | None,
    platform: bool,
    dims: Collection[str] = ROLLUP_DIMENSIONS,
    table: str = TABLE,
) -> tuple[str, list[Any]]:
    """Rows of (scope, dim, value, ROLLUP_METRICS_SQL…) for the non-bot events of [start, end)."""
    unknown = set(dims) - set(ROLLUP_DIMENSIONS)
    if unknown:
        raise ValueError(f"no rollups for {sorted(unknown)}")
    flat = [d for d in ROLLUP_DIMENSIONS if d in dims and d not in {"subtree", "audience"}]
    cube = "audience" in dims
    grouped = [*flat, *(d for d in AUDIENCE if cube and d not in flat)]  # every d_ column the sets use
    org_list = sorted(orgs) if orgs is not None else None
    params: list[Any] = [start, end]
    where = "ts >= ? AND ts < ? AND NOT bot"
    in_orgs = ""
    if org_list is not None:
        in_orgs = "IN (" + ", ".join("CAST(? AS UUID)" for _ in org_list) + ")"
        where += f" AND (owner_org {in_orgs} OR partner_org {in_orgs})"
        params += org_list * 2
    columns = "".join(f", {_column(d)} AS d_{d}" for d in grouped)
    events = (
        f"SELECT owner_org, partner_org, type, viewer, bytes, load_ms, folder_path, "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        f"{_bucket_case()} AS hb{columns} FROM {table} WHERE {where}"
    )
    # Every name and literal below is one of our constants; values are bound.
    owner_in = f" AND owner_org {in_orgs}" if in_orgs else ""
    partner_in = f" AND partner_org {in_orgs}" if in_orgs else ""
    scoped = [
        f"SELECT CAST(owner_org AS VARCHAR) AS scope, e.* FROM e WHERE owner_org IS NOT NULL{owner_in}",  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        "SELECT CAST(partner_org AS VARCHAR) AS scope, e.* FROM e WHERE partner_org IS NOT NULL "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        f"AND (owner_org IS NULL OR partner_org <> owner_org){partner_in}",
    ]
    if org_list is not None:
        params += org_list + org_list
    if platform:
        scoped.append(f"SELECT '{PLATFORM_SCOPE}' AS scope, e.* FROM e")  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
    cell = "(scope, " + ", ".join(f"d_{d}" for d in AUDIENCE) + ")"
    sets = ", ".join(["(scope)", *(f"(scope, d_{d})" for d in flat), *([cell] if cube else [])])
    # Only the audience set groups both country and browser; every other set groups one dimension at most.
    in_cell = "GROUPING(d_country) = 0 AND GROUPING(d_browser) = 0"
    whens = ([f"WHEN {in_cell} THEN 'audience'"] if cube else []) + [
        f"WHEN GROUPING(d_{d}) = 0 THEN '{d}'" for d in flat
    ]
    dim_case = f"CASE {' '.join(whens)} ELSE '' END" if whens else "''"
    value = "coalesce(" + ", ".join([*(f"d_{d}" for d in flat), "''"]) + ")"
    if cube:
        joined = f" || '{AUDIENCE_SEPARATOR}' || ".join(f"d_{d}" for d in AUDIENCE)
        value = f"CASE WHEN {in_cell} THEN {joined} ELSE {value} END"
    parts = [
        f"SELECT scope, {dim_case} AS dim, {value} AS value, {ROLLUP_METRICS_SQL} "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        f"FROM s GROUP BY GROUPING SETS ({sets})"
    ]
    if "subtree" in dims:
        parts.append(
            f"SELECT scope, 'subtree' AS dim, CAST(f AS VARCHAR) AS value, {ROLLUP_METRICS_SQL} "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
            "FROM (SELECT s.*, unnest(folder_path) AS f FROM s) AS u GROUP BY scope, f"
        )
    sql = f"WITH e AS ({events}), s AS ({' UNION ALL '.join(scoped)}) " + " UNION ALL ".join(parts)
    return sql, params


def rows(result: list[tuple[Any, ...]]) -> list[RollupRow]:
    """RollupRows from the rows of rollup_sql."""
    out = []
    for scope, dim, value, *numbers in result:
        views, viewers, load_ok, fails, downloads, blocked, total_bytes, load_ms_sum, *histogram = map(int, numbers)
        out.append(
            RollupRow(
                scope=str(scope),
                dim=str(dim),
                value=str(value),
                views=views,
                viewers=viewers,
                load_ok=load_ok,
                fails=fails,
                downloads=downloads,
                blocked=blocked,
                bytes=total_bytes,
                load_ms_sum=load_ms_sum,
                histogram=tuple(histogram),
            )
        )
    return out


EARLIEST_SQL: Final = f"SELECT min(ts) FROM {TABLE} WHERE NOT bot"  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
