"""The embedded warehouse: one DuckDB file (columnar; a dashboard scan of 10 M events takes tens of ms)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from studyshelf.analytics.warehouse import query as q
from studyshelf.analytics.warehouse.interface import Metrics, Summary, SummaryQuery, WarehouseError
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
        self._con: duckdb.DuckDBPyConnection | None = None
        self._open_lock = threading.Lock()
        self._write = threading.Lock()
        # One statement per column, each bound to a list: the rows arrive as 28 parallel lists.
        unnests = ", ".join(f"unnest(CAST(? AS {_TYPES.get(c, 'VARCHAR')}[])) AS {c}" for c in COLUMNS)
        # Column names and types are our constants; every value is bound.
        self._insert_sql = (
            f"INSERT INTO events SELECT * FROM (SELECT DISTINCT ON (id) * FROM (SELECT {unnests})) AS s "  # noqa: S608
            "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = s.id AND e.ts BETWEEN ? AND ?)"
        )

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor per call (DuckDB connections are not shared between threads); the file opens on first use,
        so commands that never touch analytics do not take DuckDB's file lock from a running server."""
        with self._open_lock:
            if self._con is None:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                try:
                    con = duckdb.connect(self.path)
                    con.execute(_DDL)
                except duckdb.Error as exc:
                    raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from exc
                self._con = con
            return self._con.cursor()

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
        with self._write:
            cur = self._cursor()
            try:
                cur.execute("BEGIN")
                before = self._count(cur)
                cur.execute(self._insert_sql, [*columns, min(times), max(times)])
                added = self._count(cur) - before
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                cur.execute("ROLLBACK")
                raise WarehouseError(f"DuckDB insert failed: {exc}") from exc
            finally:
                cur.close()
        return added

    @staticmethod
    def _count(cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def _all(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        params = [_naive_utc(p) if isinstance(p, datetime) else p for p in params]
        cur = self._cursor()
        try:
            return cur.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB query failed: {exc}") from exc
        finally:
            cur.close()

    def summary(self, query: SummaryQuery) -> Summary:
        totals = q.metrics(self._all(*q.totals_sql(query))[0])
        series = [(row[0].replace(tzinfo=UTC), q.metrics(row[1:])) for row in self._all(*q.series_sql(query))]
        breakdown: list[tuple[str, Metrics]] = []
        if query.breakdown:
            breakdown = [(str(r[0]), q.metrics(r[1:])) for r in self._all(*q.breakdown_sql(query, query.breakdown))]
        return Summary(totals, series, breakdown)

    def top(self, query: SummaryQuery, *, dimension: Literal["file", "folder"]) -> list[tuple[str, Metrics]]:
        rows = self._all(*q.breakdown_sql(query, dimension))
        return [(str(r[0]), q.metrics(r[1:])) for r in rows if r[0]]

    def delete_before(self, cutoff: datetime) -> int:
        with self._write:
            rows = self._all("DELETE FROM events WHERE ts < ? RETURNING 1", [cutoff])
        return len(rows)

    def count(self) -> int:
        return int(self._all("SELECT count(*) FROM events", [])[0][0])

    def ping(self) -> None:
        self._all("SELECT 1", [])

    def close(self) -> None:
        with self._open_lock:
            if self._con is not None:
                self._con.close()
                self._con = None
