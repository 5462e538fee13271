"""Every table of the dashboard as CSV: the same query, filters and names as the page, formula-safe cells.

`table` names what the page shows: `totals` (the tiles), `series` (the chart), `files` and `folders` (the top
tables), or a breakdown card by its dimension (`country`, `browser`, `course`, …). A breakdown's CSV holds its
rows beyond the card's first few (up to the summary's limit), in the card's order.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from studyshelf.analytics import service
from studyshelf.analytics.dashboard import DashboardQuery
from studyshelf.analytics.names import Names
from studyshelf.analytics.panels import CHARTS, label
from studyshelf.core.csvsafe import csv_safe
from studyshelf.core.errors import Invalid
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Metrics, Part, Warehouse

PATH: Final = "/analytics/table.csv"
BREAKDOWNS: Final = tuple(dim for dim, _title in CHARTS)
TABLES: Final = ("totals", "series", "files", "folders", *BREAKDOWNS)
METRIC_HEADER: Final = (
    "views",
    "viewers",
    "load_ok",
    "fails",
    "fail_rate",
    "downloads",
    "blocked",
    "bytes",
    "load_p50_ms",
    "load_p95_ms",
)


def url(query: DashboardQuery, table: str) -> str:
    """The CSV of one of the page's tables, for the page's period and filters."""
    return f"{PATH}?{urlencode({**query.params(), 'table': table})}"


def _metrics(m: Metrics) -> list[object]:
    rate = "" if m.fail_rate is None else f"{m.fail_rate:.4f}"
    p50 = "" if m.load_p50_ms is None else f"{m.load_p50_ms:.0f}"
    p95 = "" if m.load_p95_ms is None else f"{m.load_p95_ms:.0f}"
    return [m.views, m.viewers, m.load_ok, m.fails, rate, m.downloads, m.blocked, m.bytes, p50, p95]


def _write(header: Sequence[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[csv_safe(v) if isinstance(v, str) else v for v in row] for row in rows])
    return buffer.getvalue()


def build(
    db: Session,
    warehouse: Warehouse,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    query: DashboardQuery,
    table: str,
    now: datetime,
) -> str:
    """One table of the dashboard as CSV text (a table is at most a few hundred rows)."""
    if table not in TABLES:
        raise Invalid(f"`table` is one of: {', '.join(TABLES)}.")
    dim = table if table in BREAKDOWNS else None
    parts: dict[str, frozenset[Part]] = {"totals": frozenset({"totals"}), "series": frozenset({"series"})}
    built = service.build_query(
        org_id=org_id,
        start=query.start,
        end=query.end,
        filters=query.filters,
        breakdown=dim,
        bucket=service.default_bucket(query.days),
        tz=query.tz,
        parts=parts.get(table, frozenset({"breakdown"} if dim else {"top"})),
    )
    found = service.summarise(warehouse, principal=principal, org_id=org_id, query=built, db=db, now=now)
    names = Names(db, principal, org_id, now=now)
    if table == "totals":
        rows = [[query.start.isoformat(), query.end.isoformat(), *_metrics(found.totals)]]
        return _write(("from", "to", *METRIC_HEADER), rows)
    if table == "series":
        rows = [[t.isoformat(), *_metrics(m)] for t, m in found.series]
        return _write((f"{built.bucket}_start", *METRIC_HEADER), rows)
    if dim is None:
        kind = "file" if table == "files" else "folder"
        top = found.top_files if kind == "file" else found.top_folders
        names.learn(
            files=[k for k, _m in top] if kind == "file" else [], folders=[] if kind == "file" else [k for k, _m in top]
        )
        rows = [[key, label(kind, key, names), *_metrics(m)] for key, m in top if key]
        return _write(("id", "name", *METRIC_HEADER), rows)
    if dim == "course":
        names.learn_titles("course", [k for k, _m in found.breakdown])
    rows = [[key, label(dim, key, names), *_metrics(m)] for key, m in found.breakdown]
    return _write((dim, "name", *METRIC_HEADER), rows)
