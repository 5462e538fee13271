"""The embedded warehouse: one DuckDB file (columnar; a dashboard scan of 10 M events takes tens of ms).

DuckDB lets one process at a time open a file for writing, and `studyshelf serve` runs several worker
processes (and CLI commands may want the file too). A process opens the file once, under an exclusive
lock file, and keeps it open while it works, so a query costs what it costs on an open connection (each
thread has its own cursor). Another process that needs the file leaves a marker in `<file>.wants/` and
polls the lock; the holder looks for markers every 50 ms and, once it has held the file for `min_hold`
seconds and no operation is running, closes it. A holder also lets go after `idle_release` seconds
without use. A process that has just let go does not take the file back while someone else is waiting.
So two draining processes take turns of about a second each, and an open (~100 ms on a big file) is
paid per turn, not per operation. `:memory:` keeps one connection (tests).

Events go in as the JSON lines the spool keeps: pyarrow splits them into a one-column Arrow table,
DuckDB parses them in parallel (`json_transform`) into a temporary table, and one INSERT … SELECT skips
ids the table already holds within the batch's time range (an anti-join that zone maps keep to the
recent row groups), keeping one row of an id the batch holds twice (rare, so checked first).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs; only a few calls here
import pyarrow.compute as pc  # type: ignore[import-untyped]  # pyarrow ships no type stubs

from studyshelf.events.schema import COLUMNS, Event, decode_lines, encode_lines
from studyshelf.warehouse import org_events
from studyshelf.warehouse.interface import (
    WarehouseError,
)
from studyshelf.warehouse.reads import SqlReads

log = logging.getLogger("studyshelf.warehouse")
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
    "watch_ms": "INTEGER",
    "reached_pct": "SMALLINT",
}
# Column names and types are our constants. DuckDB parses the lines itself (json_transform, in parallel).
_STRUCT = "{" + ", ".join(f'"{c}": "{_TYPES.get(c, "VARCHAR")}"' for c in COLUMNS) + "}"
# A line written before the playback columns has none: '' as the event's default says (the columns take NULL).
_STAGE = (
    "CREATE OR REPLACE TEMP TABLE staged AS SELECT * REPLACE (coalesce(rendition, '') AS rendition, "
    "coalesce(captions, '') AS captions) FROM (SELECT unnest(json_transform(line, ?)) FROM batch WHERE line <> '')"
)
_CHECK = "SELECT count(*) - count(DISTINCT id), min(ts), max(ts) FROM staged"
_NEW = "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = s.id AND e.ts BETWEEN ? AND ?)"
_INSERT = f"INSERT INTO events SELECT * FROM staged AS s {_NEW}"  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
_INSERT_FIRST = f"INSERT INTO events SELECT * FROM (SELECT DISTINCT ON (id) * FROM staged) AS s {_NEW}"  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
_BAD_INPUT = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.ConstraintException)
# Checkpoints (WAL folded into compressed row groups) cost a pass over the new rows each; at DuckDB's 16 MB
# default a steady ingest checkpoints every few thousand events, at 256 MB ~25x less often (+20-30% rows/s).
_CONFIG: dict[str, Any] = {"checkpoint_threshold": "256MB"}
POLL = 0.05  # how often a holder looks for other processes' markers, and a waiter for the lock


# Warehouses that opened a file. At exit they let go of it before the interpreter stops its daemon threads:
# a holder thread closing the file (a checkpoint, in C++) while Python finalises would abort the process.
_OPEN: weakref.WeakSet[DuckDBWarehouse] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for warehouse in list(_OPEN):
        warehouse.close(timeout=5.0)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _lines_table(lines: bytes) -> Any:  # a pyarrow Table
    """The lines as a one-column Arrow table, split in C (no Python object per line)."""
    whole = pa.array([lines], pa.large_binary()).cast(pa.large_string())
    return pa.table({"line": pc.list_flatten(pc.split_pattern(whole, "\n"))})


class DuckDBWarehouse(SqlReads):
    def __init__(self, path: Path | str, *, min_hold: float = 1.0, idle_release: float = 30.0) -> None:
        self.path = str(path)
        self.min_hold = min_hold
        self.idle_release = idle_release
        self.wait_timeout = 60.0  # for another process to let go of the file
        self._cond = threading.Condition()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._cursors: list[duckdb.DuckDBPyConnection] = []  # every cursor of this connection, closed with it
        self._local = threading.local()  # this thread's (generation, cursor)
        self._generation = 0
        self._lock_fd = -1
        self._users = 0
        self._opening = False
        self._yielding = False  # another process is waiting: let go when the last operation ends
        self._held_since = 0.0
        self._last_used = 0.0
        self._let_go_at = -1e9  # when we last gave the file to a waiting process

    # -- holding the file ----------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor on the open file, opening (or waiting for) it first when needed."""
        cursor = self._acquire()
        try:
            yield cursor
        finally:
            with self._cond:
                self._users -= 1
                self._last_used = time.monotonic()
                if self._users == 0 and self._yielding:
                    self._let_go()

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        with self._cond:
            while self._opening or self._yielding:
                self._cond.wait()
            must_open = self._opening = self._con is None
        if must_open:
            try:
                con, lock_fd = self._open()
            except BaseException:
                with self._cond:
                    self._opening = False
                    self._cond.notify_all()
                raise
            with self._cond:
                self._con, self._lock_fd, self._opening = con, lock_fd, False
                self._generation += 1
                self._held_since = time.monotonic()
                self._cond.notify_all()
            if self.path != ":memory:":
                threading.Thread(target=self._watch, name="studyshelf-duckdb-holder", daemon=True).start()
        with self._cond:
            if self._con is None:  # let go of meanwhile (only between an open and its first use): again
                return self._acquire()
            self._users += 1
            return self._cursor(self._con)

    def _cursor(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Called holding the condition: this thread's cursor for the current connection."""
        mine: tuple[int, duckdb.DuckDBPyConnection] | None = getattr(self._local, "cursor", None)
        if mine is not None and mine[0] == self._generation:
            return mine[1]
        cursor = con.cursor()
        self._cursors.append(cursor)
        self._local.cursor = (self._generation, cursor)
        return cursor

    def _open(self) -> tuple[duckdb.DuckDBPyConnection, int]:
        _OPEN.add(self)
        if self.path == ":memory:":
            con = duckdb.connect(":memory:")
            con.execute(_DDL)
            return con, -1
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._take_lock(lock_fd)
            con = duckdb.connect(self.path, config=_CONFIG)
            try:
                con.execute(_DDL)
            except duckdb.Error:
                con.close()
                raise
        except duckdb.Error as exc:
            os.close(lock_fd)
            raise WarehouseError(f"cannot open the DuckDB warehouse {self.path}: {exc}") from exc
        except BaseException:
            os.close(lock_fd)
            raise
        return con, lock_fd

    def _take_lock(self, lock_fd: int) -> None:
        """Take the lock file, leaving a marker so that a holder lets go; polite after we let go ourselves."""
        wants = Path(f"{self.path}.wants")
        marker: Path | None = None
        deadline = time.monotonic() + self.wait_timeout
        try:
            while True:
                polite = time.monotonic() - self._let_go_at < 2 * self.min_hold and self._others_want(wants)
                if not polite:
                    try:
                        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return
                    except BlockingIOError:
                        pass
                if marker is None:
                    wants.mkdir(exist_ok=True)
                    marker = wants / str(os.getpid())
                    marker.touch()
                if time.monotonic() > deadline:
                    raise WarehouseError(f"the DuckDB warehouse {self.path} is held by another process")
                time.sleep(POLL / 5)
        finally:
            if marker is not None:
                marker.unlink(missing_ok=True)

    @staticmethod
    def _others_want(wants: Path) -> bool:
        """Whether a live process other than this one left a marker (stale markers are removed)."""
        try:
            names = os.listdir(wants)
        except FileNotFoundError:
            return False
        for name in names:
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                os.kill(int(name), 0)
            except ProcessLookupError:
                (wants / name).unlink(missing_ok=True)
                continue
            except PermissionError:
                pass
            return True
        return False

    def _watch(self) -> None:
        """While the file is held: let go when another process waits (after min_hold) or after idling."""
        wants = Path(f"{self.path}.wants")
        with self._cond:
            generation = self._generation
            while self._con is not None and self._generation == generation:
                self._cond.wait(POLL)
                now = time.monotonic()
                if self._yielding or self._con is None:
                    continue
                idle = self._users == 0 and now - self._last_used >= self.idle_release
                if idle or (now - self._held_since >= self.min_hold and self._others_want(wants)):
                    self._yielding = True
                    if self._users == 0:
                        self._let_go(waiting=not idle)

    def _let_go(self, *, waiting: bool = True) -> None:
        """Called holding the condition with no operation running: close the file for another process."""
        for cursor in self._cursors:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        self._cursors.clear()
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
        self._con, self._lock_fd, self._yielding = None, -1, False
        self._generation += 1
        if waiting:
            self._let_go_at = time.monotonic()
        self._cond.notify_all()

    # -- the warehouse ---------------------------------------------------------------------------

    def insert(self, events: Sequence[Event]) -> int:
        return self.insert_lines(encode_lines(events)) if events else 0

    def insert_lines(self, lines: bytes) -> int:
        """Store events given as JSON lines (Event.json_bytes), skipping ids already stored."""
        if not lines or lines.isspace():  # isspace stops at the first other byte; strip() would copy the batch
            return 0
        try:
            return self._insert_lines(lines)
        except _BAD_INPUT:
            # A torn or foreign line: keep the whole events, line by line (slow, and only then).
            return self._insert_lines(encode_lines(decode_lines(lines)))

    def _insert_lines(self, lines: bytes) -> int:
        if not lines:
            return 0
        with self._connect() as con:
            con.register("batch", _lines_table(lines))
            try:
                con.execute("BEGIN")
                con.execute(_STAGE, [_STRUCT])
                twice, low, high = con.execute(_CHECK).fetchone() or (0, None, None)
                row = con.execute(_INSERT_FIRST if twice else _INSERT, [low, high]).fetchone()
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, _BAD_INPUT):
                    raise  # bad input: insert_lines retries with the readable lines
                raise WarehouseError(f"DuckDB insert failed: {exc}") from exc
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.unregister("batch")
        return int(row[0]) if row else 0

    def _all(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        params = [_naive_utc(p) if isinstance(p, datetime) else p for p in params]
        with self._connect() as con:
            try:
                return con.execute(sql, params).fetchall()
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB query failed: {exc}") from exc

    @staticmethod
    def _as_utc(value: datetime) -> datetime:
        return _naive_utc(value).replace(tzinfo=UTC)

    def delete_before(self, cutoff: datetime) -> int:
        return int(self._all("DELETE FROM events WHERE ts < ?", [cutoff])[0][0])

    def erase_org(self, org: str) -> list[date]:
        with self._connect() as con:
            try:
                con.execute("BEGIN")
                days = org_events.days(con.execute(org_events.DAYS_SQL, [org, org]).fetchall())
                con.execute(org_events.ERASE_SQL, [org, org])
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise WarehouseError(f"DuckDB erase failed: {exc}") from exc
        return days

    def ping(self) -> None:
        """Answer from the open file; when another process holds it, it is open there, which is enough."""
        if self._con is None and self.path != ":memory:" and os.path.exists(f"{self.path}.lock"):
            fd = os.open(f"{self.path}.lock", os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            finally:
                os.close(fd)
        self._all("SELECT 1", [])

    def snapshot(self, target: Path) -> bool:
        """CHECKPOINT folds the WAL into the file; the copy happens while this process holds the file's lock."""
        if self.path == ":memory:":
            return False
        with self._connect() as con:
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB checkpoint failed: {exc}") from exc
            shutil.copyfile(self.path, target)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Let go of the file once running operations end (or, with a timeout, give up waiting for them)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._opening or self._users:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._cond.wait(left)
            if self._con is not None:
                self._let_go(waiting=False)
