"""One organisation's raw events, written once for DuckDB and PostgreSQL: read page by page (exports) and erased.

An organisation's events are those it sees in its figures: usage of its own content (owner) and its own usage
of others' content (partner), as `SummaryQuery.scope_org` counts them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from studyshelf.events.schema import COLUMNS

_SCOPE: Final = "(owner_org = CAST(? AS UUID) OR partner_org = CAST(? AS UUID))"
_UUIDS: Final = frozenset({"id", "owner_org", "partner_org", "file_id", "version_id", "folder_id"})
# Ids leave as text: building a uuid.UUID per cell was a third of an export's time.
_COLUMNS: Final = ", ".join(
    f"CAST(e.{c} AS VARCHAR)" if c in _UUIDS else "CAST(e.folder_path AS VARCHAR[])" if c == "folder_path" else f"e.{c}"
    for c in COLUMNS
)
_TS: Final = COLUMNS.index("ts")
_PATH: Final = COLUMNS.index("folder_path")


def page_sql(
    org: str, start: datetime, end: datetime, *, after: tuple[datetime, str] | None, limit: int
) -> tuple[str, list[Any]]:
    """Up to `limit` events of [start, end) in (ts, id) order, after the (ts, id) of the last row read."""
    params: list[Any] = [org, org, start, end]
    scope = _SCOPE.replace("owner_org", "e.owner_org").replace("partner_org", "e.partner_org")
    sql = f"SELECT {_COLUMNS} FROM events e WHERE {scope} AND e.ts >= ? AND e.ts < ?"  # noqa: S608 - module constants
    if after is not None:
        sql += " AND (e.ts > ? OR (e.ts = ? AND e.id > CAST(? AS UUID)))"
        params += [after[0], after[0], after[1]]
    return sql + " ORDER BY e.ts, e.id LIMIT ?", [*params, limit]


DAYS_SQL: Final = f"SELECT DISTINCT CAST(ts AS DATE) FROM events WHERE {_SCOPE}"  # noqa: S608 - module constants
ERASE_SQL: Final = f"DELETE FROM events WHERE {_SCOPE}"  # noqa: S608 - module constants


def plain_row(row: tuple[Any, ...], ts: datetime) -> tuple[Any, ...]:
    """A row with `ts` the aware UTC time given and folder_path a list."""
    values = list(row)
    values[_TS] = ts
    values[_PATH] = list(row[_PATH] or ())
    return tuple(values)


def days(rows: list[tuple[Any, ...]]) -> list[date]:
    return sorted({r[0] if isinstance(r[0], date) else date.fromisoformat(str(r[0])) for r in rows})
