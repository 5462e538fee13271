"""The embedded warehouse: one DuckDB file (columnar; a dashboard scan of 10 M events takes tens of ms).

DuckDB lets one process at a time open a file for writing, and `studyshelf serve` runs several worker
processes (and CLI commands may want the file too), so every operation opens the file under an
exclusive lock file and closes it afterwards: processes take turns, at the price of an open per
operation (tens of ms on a large file). `:memory:` keeps one connection (tests).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from studyshelf.analytics.warehouse import query as q
from studyshelf.analytics.warehouse.interface import Summary, SummaryQuery, WarehouseError
from studyshelf.events.schema import COLUMNS, Event

_DDL = (Path(__file__).parent / "sql" / "duckdb.sql").read_text()
_TYPES = {
    "id": "UUID",
    "ts": "TIMESTAMP",
    "owner_org": "UUID",
    "partner_org": "UUID",
    "file_id": "UUID",
    "version_id": "UUID",
    "folder_id": "UUID",
    "folder_path": "UUID[]",
    "bytes": "BIGINT",
    "load_ms": "INTEGER",
    "bot": "BOOLEAN",
}


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


class DuckDBWarehouse:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._memory: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()  # one operation at a time per process; the lock file orders processes
        self._created = False
        # One statement, each column bound to a list: the rows arrive as parallel lists. Column names and
        # types are our constants; every value is bound.
        unnests = ", ".join(f"unnest(CAST(? AS {_TYPES.get(c, 'VARCHAR')}[])) AS {c}" for c in COLUMNS)
        self._insert_sql = (
            f"INSERT INTO events SELECT * FROM (SELECT DISTINCT ON (id) * FROM (SELECT {unnests})) AS s "  # noqa: S608
            "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = s.id AND e.ts BETWEEN ? AND ?)"
        )

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self.path == ":memory:":
                if self._memory is None:
                    self._memory = duckdb.connect(":memory:")
                    self._memory.execute(_DDL)
                yield self._memory
                return
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    con = duckdb.connect(self.path)
                except duckdb.Error as exc:
                    raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from exc
                try:
                    if not self._created:
                        con.execute(_DDL)
                        self._created = True
                    yield con
                finally:
                    con.close()
            finally:
                os.close(lock_fd)  # releases the lock

    def insert(self, events: Sequence[Event]) -> int:
        if not events:
            return 0
        columns: list[list[Any]] = [[] for _ in COLUMNS]
        for event in events:
            for i, name in enumerate(COLUMNS):
                value = getattr(event, name)
                if name == "ts":
                    value = _naive_utc(value)
                elif name == "folder_path":
                    value = list(value)
                columns[i].append(value)
        times = columns[COLUMNS.index("ts")]
        with self._connect() as con:
            try:
                con.execute("BEGIN")
                before = self._count(con)
                con.execute(self._insert_sql, [*columns, min(times), max(times)])
                added = self._count(con) - before
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise WarehouseError(f"DuckDB insert failed: {exc}") from exc
        return added

    @staticmethod
    def _count(cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def _all(self, sql: str, params: list[Any], con: duckdb.DuckDBPyConnection | None = None) -> list[tuple[Any, ...]]:
        if con is None:
            with self._connect() as opened:
                return self._all(sql, params, opened)
        params = [_naive_utc(p) if isinstance(p, datetime) else p for p in params]
        try:
            return con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB query failed: {exc}") from exc

    def summary(self, query: SummaryQuery) -> Summary:
        rows = self._all(*q.summary_sql(query))
        return q.summary(rows, query, as_utc=lambda t: t.replace(tzinfo=UTC))

    def delete_before(self, cutoff: datetime) -> int:
        return len(self._all("DELETE FROM events WHERE ts < ? RETURNING 1", [cutoff]))

    def count(self) -> int:
        return int(self._all("SELECT count(*) FROM events", [])[0][0])

    def ping(self) -> None:
        self._all("SELECT 1", [])

    def close(self) -> None:
        with self._lock:
            if self._memory is not None:
                self._memory.close()
                self._memory = None
