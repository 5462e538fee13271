"""A partner's raw events for a range of days, as CSV or Parquet, streamed page by page.

The rows are the warehouse's, pseudonymous as stored (viewers are daily pseudonyms, no addresses, no names).
Each page is one short warehouse query in (ts, id) order within one day, so a long range never sits in memory
and no connection is held while a slow client reads: a page becomes one CSV chunk or one Parquet row group.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type stubs
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.rollup import today, window
from studyshelf.analytics.service import time_zone
from studyshelf.core.csvsafe import FORMULA_STARTS
from studyshelf.core.errors import Invalid, Unavailable
from studyshelf.events.schema import COLUMNS
from studyshelf.partners import service as partners
from studyshelf.partners.permissions import Permission, is_operator_admin, require
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Warehouse, WarehouseError

log = logging.getLogger("studyshelf.analytics")
Format = Literal["csv", "parquet"]
MAX_EXPORT_DAYS: Final = 92
PAGE_ROWS: Final = 20_000
MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
_TYPES: Final[dict[str, Any]] = {
    "ts": pa.timestamp("us", tz="UTC"),
    "folder_path": pa.list_(pa.string()),
    "bytes": pa.int64(),
    "load_ms": pa.int32(),
    "bot": pa.bool_(),
}
SCHEMA: Final = pa.schema([(c, _TYPES.get(c, pa.string())) for c in COLUMNS])
_TS: Final = COLUMNS.index("ts")
_ID: Final = COLUMNS.index("id")
_FORMULA: Final = "^[" + re.escape("".join(sorted(FORMULA_STARTS))) + "]"  # cells csv_safe would quote


@dataclass(frozen=True)
class ExportRange:
    """Days `first`..`last` of the organisation's time zone, as the UTC instants [start, end)."""

    org_id: uuid.UUID
    slug: str
    first: date
    last: date
    time_zone: str
    start: datetime
    end: datetime

    def filename(self, fmt: Format) -> str:
        return f"studyshelf-events-{self.slug}-{self.first.isoformat()}-{self.last.isoformat()}.{fmt}"


def plan(
    db: Session,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    first: date | None,
    last: date | None,
    retention_days: int,
    now: datetime,
) -> ExportRange:
    """Check who asks (ANALYTICS_READ on the organisation; operator admins for any) and the range of days."""
    if is_operator_admin(principal):
        org = partners.get_organization(db, org_id)  # NotFound for an unknown organisation
    else:
        require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
        org = partners.get_organization(db, org_id)
    tz = time_zone(db, org_id=org_id)
    current = today(tz, now)
    last = last or current
    first = first or last - timedelta(days=6)
    if last < first:
        raise Invalid("`to` is before `from`.")
    if (last - first).days + 1 > MAX_EXPORT_DAYS:
        raise Invalid(f"Export at most {MAX_EXPORT_DAYS} days at a time.")
    if last > current:
        raise Invalid(f"`to` is in the future (today is {current.isoformat()} in {tz}).")
    oldest = current - timedelta(days=retention_days)
    if first < oldest:
        raise Invalid(
            f"Raw events are kept {retention_days} days: `from` must be {oldest.isoformat()} or later.",
            oldest=oldest.isoformat(),
        )
    return ExportRange(org_id, org.slug, first, last, tz, window(tz, first)[0], window(tz, last)[1])


def pages(warehouse: Warehouse, rng: ExportRange, *, page_rows: int = PAGE_ROWS) -> Iterator[list[tuple[Any, ...]]]:
    """The range's events page by page, oldest first; one day at a time keeps each query's scan short."""
    day = rng.start
    while day < rng.end:
        day_end = min(day + timedelta(days=1), rng.end)
        after: tuple[datetime, str] | None = None
        while True:
            rows = warehouse.org_events(str(rng.org_id), day, day_end, after=after, limit=page_rows)
            if rows:
                yield rows
            if len(rows) < page_rows:
                break
            after = (rows[-1][_TS], rows[-1][_ID])
        day = day_end


def first_page(warehouse: Warehouse, rng: ExportRange, *, page_rows: int = PAGE_ROWS) -> Iterator[list[Any]]:
    """The pages, the first one read now: a warehouse that cannot answer is a 503 before anything is sent."""
    source = pages(warehouse, rng, page_rows=page_rows)
    try:
        head = next(source, None)
    except WarehouseError as exc:
        raise Unavailable("Raw events are not available right now; try again shortly.") from exc
    return _chain(head, source)


def _chain(head: list[Any] | None, rest: Iterator[list[Any]]) -> Iterator[list[Any]]:
    if head is None:
        return
    yield head
    try:
        yield from rest
    except WarehouseError:
        # The status line has gone: stop here, and the client sees a cut-off body (no trailer to say more).
        log.exception("raw event export cut short by the warehouse")
        raise


def table(rows: list[tuple[Any, ...]]) -> Any:  # a pyarrow Table
    """One page as Arrow columns of SCHEMA."""
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(column, type=SCHEMA.field(i).type) for i, column in enumerate(columns)], schema=SCHEMA
    )


def _csv_column(field: Any, column: Any) -> Any:
    if field.name == "ts":
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    if field.name == "folder_path":
        return pc.binary_join(column, "/")
    if pa.types.is_string(field.type):
        risky = pc.match_substring_regex(column, _FORMULA)
        return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
    return column


def _csv_page(page: Any) -> bytes:
    """A page as CSV rows (no header), in C: text cells formula-safe, ts ISO 8601 in UTC, folder_path joined by '/'."""
    columns = [_csv_column(field, column) for field, column in zip(SCHEMA, page.columns, strict=True)]
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.table(columns, names=list(COLUMNS)), sink, pa_csv.WriteOptions(include_header=False))
    return bytes(sink.getvalue().to_pybytes())


def csv_chunks(source: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """A header, then one chunk per page."""
    yield (",".join(COLUMNS) + "\n").encode()
    for rows in source:
        yield _csv_page(table(rows))


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: the bytes since the last take()."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def parquet_chunks(source: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """A Parquet file (zstd), one row group per page, sent as each group is written."""
    sink = _Sink()
    writer = pq.ParquetWriter(sink, SCHEMA, compression="zstd")
    try:
        for rows in source:
            writer.write_table(table(rows))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def chunks(fmt: Format, source: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    return csv_chunks(source) if fmt == "csv" else parquet_chunks(source)
