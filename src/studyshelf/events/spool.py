"""The embedded event buffer: JSON lines appended to segment files under the data dir.

`publish` returns once its lines are on disk (fdatasync). Publishers share the syncs (group commit):
each encodes its events outside any lock and adds them to the open group; the first publisher that
finds no sync running leads: it takes the whole group, writes it with one `write` and one `fdatasync`,
and wakes the group. Whoever arrived meanwhile has joined the next group, whose first waiter leads next.
So the number of syncs a second follows the disk (~0.3 ms each here), not the number of publishers, and a
batch of any size costs one write. `fsync_ms` > 0 makes a leader also wait that long after the previous
sync for company (or until `fsync_events` are waiting); 0 (the default) syncs at once.

The consumer reads raw bytes (the lines of up to `max_count` events, at most 64 MiB) outside the
publishers' lock and hands them on as they are: the warehouse parses them in bulk. Its position lives in
the file `committed` ("<segment> <byte offset>"), replaced atomically after each ack; segments wholly
before it are deleted. A crash can lose the last ack (those events are delivered again, and the
warehouse drops them by id) but never an event whose publish returned. Every start, and every failed
write, opens a new segment, so a line torn by a crash or a full disk stays at the end of an old segment
and is skipped.

Each process owns one slot directory (`<dir>/<n>/`, the lowest whose lock file is free), so several
web processes on one machine each append and drain their own; a restarted process takes a free slot
again and drains what the one before it left. Several machines need the Redis stream.

For the ingest lag (`oldest_accepted_at`) the spool notes, at most once a second, the sequence number of the
first event a sync made durable and the time: every event up to the next note was accepted within that second.
Events left by an earlier process are dated by the `ts` of the first of them (when it happened: no later than
its acceptance, so a restart never hides a drain that is stuck).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from studyshelf.core.clock import Clock, SystemClock, as_utc
from studyshelf.events.interface import Batch, EventStreamError
from studyshelf.events.schema import Event, encode_lines

log = logging.getLogger("studyshelf.events.spool")
_SEGMENT = "seg-{:010d}.jsonl"
MAX_SLOTS = 64
MAX_READ_BYTES = 64 * 1024 * 1024
_READ_BYTES_PER_LINE = 2048  # an event line is ~700 bytes; a short read just returns fewer lines this time
ACCEPTED_RESOLUTION = timedelta(seconds=1)  # how often the time of a sync is noted, at most


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


@dataclass(eq=False)
class _Claim:
    start: Position
    end: Position
    count: int
    at: float
    done: bool = False


class _Group:
    """Publishes that share one write and one sync."""

    __slots__ = ("chunks", "count", "done", "error", "waiters")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.waiters: list[threading.Lock] = []  # one per publisher waiting, released when it may go on
        self.count = 0
        self.done = False
        self.error: OSError | None = None


class SpoolEventStream:
    def __init__(
        self,
        base: Path,
        *,
        fsync_ms: float = 0.0,
        fsync_events: int = 256,
        segment_bytes: int = 16 * 1024 * 1024,
        claim_idle_seconds: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.base = base
        self.clock = clock or SystemClock()
        self.directory = base  # the slot, once opened
        self.fsync_interval = fsync_ms / 1000
        self.fsync_events = fsync_events
        self.segment_bytes = segment_bytes
        self.claim_idle_seconds = claim_idle_seconds
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)  # readers waiting for a sync
        self._reading = threading.Lock()  # one reader at a time; publishers never wait for it
        self._committing = threading.Lock()  # one write of the committed position at a time, outside `_lock`
        self._opened = False
        self._lock_fd = -1
        self._fd = -1
        self._segment = 0
        self._size = 0
        self._broken = False  # a write failed: the next one starts a new segment
        self._group = _Group()
        self._syncing = False
        self._last_sync = 0.0
        self._durable = Position(0, 0)  # everything before this is on disk
        self._committed = Position(0, 0)
        self._cursor = Position(0, 0)  # the next read starts here
        self._claims: list[_Claim] = []
        self._backlog = 0
        self._acked = 0  # events acked by this process, those an earlier one left included
        self._accepted: deque[tuple[int, datetime]] = deque()  # (sequence number of an event, accepted at)

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._opened:
            return
        self._lock_fd, self.directory = self._take_slot()
        self._committed = self._read_committed()
        self._cursor = self._committed
        self._backlog = self._count_lines(self._committed)
        if self._backlog:
            self._accepted.append((0, self._first_event_time(self._committed) or self.clock.now()))
        for segment in self._segments():
            self._drop_if_empty(segment)  # left by a run that published nothing; we hold the slot, so no writer races
        existing = self._segments()
        # Past the committed position even when its segment is gone, so that reading resumes at the new one.
        self._new_segment(max(existing[-1] if existing else 0, self._committed.segment) + 1)
        self._durable = Position(self._segment, 0)
        self._opened = True

    def _take_slot(self) -> tuple[int, Path]:
        for slot in range(MAX_SLOTS):
            directory = self.base / str(slot)
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd, directory
        raise EventStreamError(f"all {MAX_SLOTS} event spool slots in {self.base} are taken; use Redis Streams")

    def _segments(self) -> list[int]:
        return sorted(int(p.name[4:14]) for p in self.directory.glob("seg-*.jsonl"))

    def _path(self, segment: int) -> Path:
        return self.directory / _SEGMENT.format(segment)

    def _drop_if_empty(self, segment: int) -> None:
        path = self._path(segment)
        if path.stat().st_size == 0:
            path.unlink()

    def _new_segment(self, number: int) -> None:
        self._fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new name itself must survive a crash
        finally:
            os.close(dir_fd)
        self._segment, self._size = number, 0

    def _read_committed(self) -> Position:
        try:
            segment, offset = (self.directory / "committed").read_text().split()
            return Position(int(segment), int(offset))
        except (FileNotFoundError, ValueError):
            return Position(0, 0)

    def _count_lines(self, start: Position) -> int:
        count = 0
        for segment in self._segments():
            if segment >= start.segment:
                with open(self._path(segment), "rb") as handle:
                    handle.seek(start.offset if segment == start.segment else 0)
                    while chunk := handle.read(MAX_READ_BYTES):
                        count += chunk.count(b"\n")
        return count

    def _first_event_time(self, start: Position) -> datetime | None:
        """The `ts` of the first whole line at or after `start` (None when unreadable)."""
        for segment in self._segments():
            if segment < start.segment:
                continue
            data, _exhausted = self._read_from(segment, start.offset if segment == start.segment else 0, None, 4096)
            line = data[: data.find(b"\n")]
            if not line:
                continue
            try:
                return as_utc(datetime.fromisoformat(orjson.loads(line)["ts"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return None
        return None

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        data = encode_lines(events)
        waiter = None
        with self._lock:
            self._open()
            group = self._group
            group.chunks.append(data)
            group.count += len(events)
            if self._syncing:
                waiter = threading.Lock()
                waiter.acquire()
                group.waiters.append(waiter)
            else:
                self._syncing = True
        if waiter is not None:
            waiter.acquire()  # released when our group is done, or when it is our turn to lead it
        if not group.done:
            self._lead(group)
        if group.error is not None:
            raise EventStreamError(f"could not append to the event spool: {group.error}") from group.error

    def _lead(self, group: _Group) -> None:
        """Write and sync the open group (ours), wake it, and hand the lead to a waiter of the next one."""
        with self._lock:
            deadline = self._last_sync + self.fsync_interval
            while group.count < self.fsync_events and (left := deadline - time.monotonic()) > 0:
                self._lock.release()
                time.sleep(min(left, 0.0005))
                self._lock.acquire()
            assert group is self._group
            self._group = _Group()
            try:
                if self._broken or self._size >= self.segment_bytes:
                    self._rotate()
            except OSError as exc:
                group.error = exc
            fd, data = self._fd, b"".join(group.chunks)
        if group.error is None:
            try:
                _write_all(fd, data)
                os.fdatasync(fd)
            except OSError as exc:
                group.error = exc
        with self._lock:
            if group.error is None:
                self._size += len(data)
                self._durable = Position(self._segment, self._size)
                self._note_accepted(self._acked + self._backlog)
                self._backlog += group.count
            else:
                self._broken = True  # whatever part was written stays a torn tail of this segment
            group.done = True
            self._last_sync = time.monotonic()
            following = self._group.waiters
            if following:
                following.pop(0).release()  # the lead passes on: `_syncing` stays set
            else:
                self._syncing = False
            self._readable.notify_all()
        for waiter in group.waiters:
            waiter.release()

    def _note_accepted(self, first: int) -> None:
        """Note when event number `first` (and the rest of its group) became durable, unless noted within a second."""
        now = self.clock.now()
        if not self._accepted or now - self._accepted[-1][1] >= ACCEPTED_RESOLUTION:
            self._accepted.append((first, now))

    def _rotate(self) -> None:
        os.close(self._fd)  # everything written to it was synced by the group that wrote it
        self._new_segment(self._segment + 1)
        self._durable = Position(self._segment, 0)
        self._broken = False

    # -- consuming -----------------------------------------------------------------------------

    def read(self, *, consumer: str, max_count: int = 500, block_ms: int = 0) -> Batch:
        deadline = time.monotonic() + block_ms / 1000
        with self._reading:
            while True:
                with self._lock:
                    self._open()
                    now = time.monotonic()
                    if any(not c.done and now - c.at >= self.claim_idle_seconds for c in self._claims):
                        self._claims.clear()  # the consumer holding them went quiet: deliver them again
                        self._cursor = self._committed
                    start, stop = self._cursor, self._durable
                # The bytes before `stop` are synced and never change: read them without the lock.
                data, end, count = self._read_lines(start, stop, max_count) if start < stop else (b"", start, 0)
                if count or time.monotonic() >= deadline:
                    break
                with self._lock:
                    if self._durable == stop:
                        self._readable.wait(max(0.0, deadline - time.monotonic()))
            if not count:
                return Batch([], None)
            with self._lock:
                claim = _Claim(start, end, count, time.monotonic())
                self._claims.append(claim)
                self._cursor = end
            return Batch(token=claim, lines=data, count=count)

    def _read_lines(self, start: Position, stop: Position, max_count: int) -> tuple[bytes, Position, int]:
        """Whole lines from `start` towards `stop`: (bytes, where they end, how many)."""
        chunks: list[bytes] = []
        count, size, end = 0, 0, start
        for segment in self._segments():
            if segment < start.segment or segment > stop.segment:
                continue
            offset = start.offset if segment == start.segment else 0
            limit = stop.offset if segment == stop.segment else None  # where the synced bytes end
            exhausted = False
            while not exhausted and count < max_count and size < MAX_READ_BYTES // 2:
                # About what the lines still wanted take (a few MB), not the whole segment.
                budget = min(MAX_READ_BYTES - size, (max_count - count) * _READ_BYTES_PER_LINE)
                data, exhausted = self._read_from(segment, offset, limit, budget)
                data = data[: data.rfind(b"\n") + 1]  # an older segment may end in a torn line: never a whole one
                lines = data.count(b"\n")
                if count + lines > max_count:
                    data = data[: _end_of_line(data, max_count - count)]
                    lines = max_count - count
                if not lines:
                    break
                chunks.append(data)
                offset += len(data)
                count, size, end = count + lines, size + len(data), Position(segment, offset)
            if count >= max_count or size >= MAX_READ_BYTES // 2 or not exhausted:
                break  # a segment is left for the next one only once it was read to its end
        return b"".join(chunks), end, count

    def _read_from(self, segment: int, offset: int, limit: int | None, budget: int) -> tuple[bytes, bool]:
        """Up to `budget` bytes (more if no line ends within them) and whether the segment's end was reached."""
        data = b""
        with open(self._path(segment), "rb") as handle:
            handle.seek(offset)
            while True:
                want = budget if limit is None else min(budget, limit - offset - len(data))
                more = handle.read(want) if want > 0 else b""
                data += more
                exhausted = len(more) < want or want <= 0
                if exhausted or b"\n" in more:
                    return data, exhausted

    def ack(self, batch: Batch) -> None:
        if batch.token is None:
            return
        assert isinstance(batch.token, _Claim)
        with self._lock:
            if batch.token not in self._claims:
                return  # redelivered meanwhile; the newer claim will be acked
            batch.token.done = True
            advanced = False
            while self._claims and self._claims[0].done:
                claim = self._claims.pop(0)
                self._committed = claim.end
                self._backlog = max(0, self._backlog - claim.count)
                self._acked += claim.count
                advanced = True
            self._forget_acked_notes()
        if advanced:
            # The position's fsync happens outside the publishers' lock, so an ack never holds up a view.
            with self._committing:
                with self._lock:
                    committed, current = self._committed, self._segment
                self._write_committed(committed, current)

    def _write_committed(self, committed: Position, current: int) -> None:
        tmp = self.directory / "committed.tmp"
        with open(tmp, "w") as handle:
            handle.write(f"{committed.segment} {committed.offset}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "committed")
        for segment in self._segments():
            if segment < committed.segment and segment != current:
                self._path(segment).unlink(missing_ok=True)

    def backlog(self) -> int:
        with self._lock:
            self._open()
            return self._backlog

    def oldest_accepted_at(self) -> datetime | None:
        with self._lock:
            self._open()
            if not self._backlog or not self._accepted:
                return None
            self._forget_acked_notes()
            return self._accepted[0][1]

    def _forget_acked_notes(self) -> None:
        """Keep the notes from the one dating the oldest unacked event on (the last at or before it)."""
        while len(self._accepted) > 1 and self._accepted[1][0] <= self._acked:
            self._accepted.popleft()

    def close(self) -> None:
        with self._lock:
            if not self._opened:
                return
            os.close(self._fd)
            self._drop_if_empty(self._segment)
            os.close(self._lock_fd)
            self._opened = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _end_of_line(data: bytes, n: int) -> int:
    """The offset just past the n-th newline of data (n ≥ 1)."""
    index = -1
    for _ in range(n):
        index = data.index(b"\n", index + 1)
    return index + 1
