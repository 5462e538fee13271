"""The scale warehouse: PostgreSQL, raw events partitioned by month, partitions created on demand.

Dashboards over long ranges should read rollups (analytics reports, a later step); raw scans here are
for recent ranges and drill-downs, served by the indexes in sql/postgres.sql.
"""

from __future__ import annotations

import logging
import queue
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs; only a few calls here
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.json as pa_json  # type: ignore[import-untyped]  # pyarrow ships no type stubs
from psycopg import sql

from studyshelf.core.db import CUSTOM_PLANS
from studyshelf.events.schema import COLUMNS, Event, decode_lines, encode_lines
from studyshelf.warehouse import org_events
from studyshelf.warehouse.interface import (
    WarehouseError,
)
from studyshelf.warehouse.reads import SqlReads

log = logging.getLogger("studyshelf.warehouse")
_DDL = (Path(__file__).parent / "sql" / "postgres.sql").read_text()
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PARTITION = re.compile(r"events_p(\d{4})(\d{2})")
_PARTITION_LOCK = 0x5354_5544_5931  # one advisory lock key for partition DDL
# The lines as Arrow columns: text stays text (PostgreSQL parses uuids and times from the CSV).
_ARROW_TYPES: dict[str, Any] = {
    "folder_path": pa.list_(pa.string()),
    "bytes": pa.int64(),
    "load_ms": pa.int32(),
    "bot": pa.bool_(),
    "watch_ms": pa.int32(),
    "reached_pct": pa.int16(),
}
_TEXT_DEFAULTS = ("rendition", "captions")  # '' where a line written before these columns has none
_PARSE = pa_json.ParseOptions(
    explicit_schema=pa.schema([(c, _ARROW_TYPES.get(c, pa.string())) for c in COLUMNS]),
    unexpected_field_behavior="ignore",
)


class _UnreadableLines(Exception):
    """A batch of lines PostgreSQL could not take as events (invalid JSON, a field missing)."""


def _month(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(value: datetime) -> datetime:
    return value.replace(year=value.year + 1, month=1) if value.month == 12 else value.replace(month=value.month + 1)


def split_url(url: str) -> tuple[str, str]:
    """The connection URL without our `schema` parameter, and the schema (default `analytics`)."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query)
    schema = next((v for k, v in params if k == "schema"), "analytics")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"invalid warehouse schema name {schema!r}")
    rest = urlencode([(k, v) for k, v in params if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresWarehouse(SqlReads):
    postgres = True

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url, self.schema = split_url(url)
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._size = pool_size
        self._partitions: set[datetime] = set()
        self._ready = False

    @contextmanager
    def _conn(
        self, *, errors: tuple[type[psycopg.Error], ...] = (), transaction: bool = True
    ) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (in a transaction unless a single read: one round trip); psycopg errors
        become WarehouseError, except `errors`."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            try:
                conn = psycopg.connect(
                    self.url,
                    connect_timeout=5,
                    autocommit=True,  # transactions are explicit (conn.transaction()), reads need none
                    options=f"-c timezone=UTC -c search_path={self.schema} {CUSTOM_PLANS}",  # a checked identifier
                )
            except psycopg.Error as exc:
                raise WarehouseError(f"cannot reach the PostgreSQL warehouse: {exc}") from exc
        try:
            if transaction:
                with conn.transaction():
                    yield conn
            else:
                yield conn
        except BaseException as exc:
            self._partitions = set()  # partitions made in the rolled-back transaction are gone again
            if isinstance(exc, errors):
                self._release(conn)  # rolled back, and the connection is fine
                raise
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise WarehouseError(f"PostgreSQL warehouse: {exc}") from exc
            raise
        self._release(conn)

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or self._pool.qsize() >= self._size:
            conn.close()
        else:
            self._pool.put(conn)

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
            conn.execute(_DDL.replace("{schema}", self.schema))
        self._ready = True

    def _ensure_partitions(self, conn: psycopg.Connection[Any], months: set[datetime]) -> None:
        missing = months - self._partitions
        if not missing:
            return
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])  # concurrent workers, one DDL
        for month in sorted(missing):
            name = f"events_p{month:%Y%m}"
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(self.schema, name),
                    sql.Identifier(self.schema, "events"),
                    sql.Literal(month),
                    sql.Literal(_next_month(month)),
                )
            )
        self._partitions |= missing

    def insert(self, events: Sequence[Event]) -> int:
        return self.insert_lines(encode_lines(events)) if events else 0

    def insert_lines(self, lines: bytes) -> int:
        """Store events given as JSON lines (Event.json_bytes), skipping ids already stored.

        pyarrow parses the lines (in C++, without the GIL) and writes them as CSV for COPY (see _copy).
        """
        if not lines or lines.isspace():
            return 0
        self._ensure_schema()
        try:
            return self._copy(*_as_csv(lines))
        except _UnreadableLines:
            # A torn or foreign line: keep the whole events, parsed one by one (slow, and only then).
            stored = 0
            for event in decode_lines(lines):
                try:
                    stored += self._copy(*_as_csv(event.json_bytes()))
                except _UnreadableLines:
                    log.error("skipping an analytics event PostgreSQL refuses: %s", event.id)
            return stored

    def _copy(self, csv: bytes, months: set[datetime]) -> int:
        """COPY straight into the events; a batch that meets an id already stored (a redelivery after a crash,
        or an id twice in the batch: rare) is loaded again through a temporary table, and one INSERT … ON
        CONFLICT DO NOTHING moves only the new rows into the partitions."""
        table = sql.Identifier(self.schema, "events")
        columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        try:
            with self._conn(errors=(psycopg.errors.UniqueViolation,)) as conn:
                self._ensure_partitions(conn, months)
                with conn.cursor() as cur:
                    try:
                        with cur.copy(
                            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(table, columns)
                        ) as copy:
                            copy.write(csv)
                    except (psycopg.DataError, psycopg.errors.NotNullViolation) as exc:
                        raise _UnreadableLines from exc
                    return max(0, cur.rowcount)
        except psycopg.errors.UniqueViolation:
            pass
        with self._conn() as conn:
            self._ensure_partitions(conn, months)
            conn.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS staged (LIKE {}) ON COMMIT DELETE ROWS").format(table)
            )
            with conn.cursor() as cur:
                try:
                    with cur.copy(sql.SQL("COPY staged ({}) FROM STDIN WITH (FORMAT csv)").format(columns)) as copy:
                        copy.write(csv)
                except (psycopg.DataError, psycopg.IntegrityError) as exc:  # a field missing or out of range
                    raise _UnreadableLines from exc
                cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM staged ON CONFLICT DO NOTHING").format(table))
                return max(0, cur.rowcount)

    def _all(self, text: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """One read statement (the session's search_path is the warehouse schema)."""
        self._ensure_schema()
        with self._conn(transaction=False) as conn:
            return conn.execute(text.replace("?", "%s"), params).fetchall()

    @staticmethod
    def _as_utc(value: datetime) -> datetime:
        return value.astimezone(UTC)

    def delete_before(self, cutoff: datetime) -> int:
        """Drop whole months before the cutoff's month, then delete the older rows of that month."""
        self._ensure_schema()
        first_kept = _month(cutoff)
        deleted = 0
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
            names = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
                "WHERE p.relname = 'events' AND n.nspname = %s",
                [self.schema],
            ).fetchall()
            for (name,) in names:
                match = _PARTITION.fullmatch(name)
                if match and datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC) < first_kept:
                    ident = sql.Identifier(self.schema, name)
                    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
                    deleted += int(row[0]) if row else 0
                    conn.execute(sql.SQL("DROP TABLE {}").format(ident))
                    self._partitions.discard(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC))
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ts < %s").format(sql.Identifier(self.schema, "events")), [cutoff]
            )
            deleted += max(0, cur.rowcount)
        return deleted

    def erase_org(self, org: str) -> list[date]:
        """The days and the deletion in one transaction (the scans use each month's partition)."""
        self._ensure_schema()
        with self._conn() as conn:
            days = org_events.days(conn.execute(org_events.DAYS_SQL.replace("?", "%s"), [org, org]).fetchall())
            conn.execute(org_events.ERASE_SQL.replace("?", "%s"), [org, org])
        return days

    def ping(self) -> None:
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def snapshot(self, target: Path) -> bool:
        """PostgreSQL is backed up by its own WAL archiving (pgBackRest), not by copying."""
        return False

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


def _as_csv(lines: bytes) -> tuple[bytes, set[datetime]]:
    """The events of JSON lines as CSV rows in COLUMNS order (folder_path as an array literal), and their months."""
    try:
        table = pa_json.read_json(pa.BufferReader(lines), parse_options=_PARSE)
    except pa.ArrowInvalid as exc:
        raise _UnreadableLines from exc
    index = table.schema.get_field_index("folder_path")
    path = table.column(index)
    literal = pc.binary_join_element_wise("{", pc.binary_join(path, ","), "}", "")
    table = table.set_column(index, "folder_path", literal)
    for name in _TEXT_DEFAULTS:
        position = table.schema.get_field_index(name)
        table = table.set_column(position, name, pc.fill_null(table.column(position), ""))
    months = {
        datetime(int(m[:4]), int(m[5:7]), 1, tzinfo=UTC)
        for m in pc.unique(pc.utf8_slice_codeunits(table.column("ts"), 0, 7)).to_pylist()
        if m
    }
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))  # null → empty, "" → ""
    return sink.getvalue().to_pybytes(), months
