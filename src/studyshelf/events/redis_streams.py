"""The scale event buffer: a Redis stream with one consumer group of warehouse workers.

One `publish` is one stream entry (or several, of at most ENTRY_EVENTS events each) holding its events
as JSON lines, so a request's single event costs one XADD and a batch of a hundred costs one too. XADD
answers once the entry is in Redis (run Redis with `appendonly yes` and `appendfsync everysec` or
`always` for the durability you want). Workers read with XREADGROUP, and XACK+XDEL an entry only after
the warehouse committed it; entries a dead worker left pending longer than `claim_idle_seconds` are
taken over with XAUTOCLAIM. Delivery is at least once; the warehouse drops duplicates by id.

The events waiting (`backlog`) are counted in a key beside the stream: publishing adds an entry's events
in the same script as its XADD (one command, atomic), and acking subtracts them in the same script as its
XACK, only for entries that XACK really acknowledged, so an entry acked twice (after a takeover) counts once.

The oldest event waiting (`oldest_accepted_at`) is the older of the group's oldest pending entry (XPENDING) and
its first undelivered one (the entry after the group's last-delivered id); an entry id is the Redis server's
time of the XADD in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import redis

from studyshelf.events.interface import Batch, EventStreamError
from studyshelf.events.schema import Event, encode_lines

GROUP: Final = "warehouse"
ENTRY_EVENTS: Final = 100  # events per stream entry at most: a read of N entries holds at most 100 N events
# KEYS: stream, backlog counter; ARGV: pairs of (events in the entry, their lines). One command, atomic.
_PUBLISH: Final = """
local total = 0
for i = 1, #ARGV, 2 do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 'n', ARGV[i])
  total = total + tonumber(ARGV[i])
end
return redis.call('INCRBY', KEYS[2], total)
"""
# KEYS: stream, backlog counter; ARGV: group, then pairs of (entry id, events in it).
_ACK: Final = """
local acked = 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    acked = acked + tonumber(ARGV[i + 1])
  end
  redis.call('XDEL', KEYS[1], ARGV[i])
end
if redis.call('DECRBY', KEYS[2], acked) < 0 then redis.call('SET', KEYS[2], 0) end
return acked
"""


class RedisStreamsEventStream:
    def __init__(self, url: str, *, stream: str = "studyshelf:events", claim_idle_seconds: float = 30.0) -> None:
        self.client: redis.Redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.stream = stream
        self.counter = f"{stream}:backlog"
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._group_ready = False
        self._publish = self.client.register_script(_PUBLISH)
        self._ack = self.client.register_script(_ACK)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise EventStreamError(str(exc)) from exc
        self._group_ready = True

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            self._ensure_group()  # before the first entry, so the group sees every entry
            args: list[bytes | int] = []
            for start in range(0, len(events), ENTRY_EVENTS):
                chunk = events[start : start + ENTRY_EVENTS]
                args += [len(chunk), encode_lines(chunk)]
            self._publish(keys=[self.stream, self.counter], args=args)
        except redis.RedisError as exc:
            raise EventStreamError(f"could not publish to Redis: {exc}") from exc

    def read(self, *, consumer: str, max_count: int = 500, block_ms: int = 0) -> Batch:
        """Up to `max_count` entries (so up to ENTRY_EVENTS × max_count events) as one batch of lines."""
        try:
            self._ensure_group()
            claimed: Any = self.client.xautoclaim(
                self.stream, GROUP, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=max_count
            )
            entries: list[Any] = [e for e in claimed[1] if e[1]]  # deleted entries come back empty
            gone = [e[0] for e in claimed[1] if not e[1]]
            if gone:
                self.client.xack(self.stream, GROUP, *gone)
            if not entries:
                answer: Any = self.client.xreadgroup(
                    GROUP, consumer, {self.stream: ">"}, count=max_count, block=block_ms or None
                )
                entries = answer[0][1] if answer else []
        except redis.RedisError as exc:
            raise EventStreamError(f"could not read from Redis: {exc}") from exc
        if not entries:
            return Batch([], [])
        # The JSON lines as Redis holds them: the warehouse parses them itself, so no Event is built here.
        counts = [int(fields.get(b"n", 1)) for _id, fields in entries]
        lines = b"".join([_line(fields[b"e"]) for _id, fields in entries])
        return Batch(
            token=[(entry[0], n) for entry, n in zip(entries, counts, strict=True)], lines=lines, count=sum(counts)
        )

    def ack(self, batch: Batch) -> None:
        entries = batch.token
        assert isinstance(entries, list)
        if not entries:
            return
        try:
            self._ack(keys=[self.stream, self.counter], args=[GROUP, *(v for entry in entries for v in entry)])
        except redis.RedisError as exc:
            raise EventStreamError(f"could not ack in Redis: {exc}") from exc

    def backlog(self) -> int:
        try:
            return max(0, int(self.client.get(self.counter) or 0))
        except redis.RedisError as exc:
            raise EventStreamError(f"Redis is not reachable: {exc}") from exc

    def oldest_accepted_at(self) -> datetime | None:
        try:
            self._ensure_group()
            with self.client.pipeline(transaction=False) as pipe:
                pipe.xpending(self.stream, GROUP)
                pipe.xinfo_groups(self.stream)
                pending, groups = pipe.execute()
            last_delivered = next(g["last-delivered-id"] for g in groups if _text(g["name"]) == GROUP)
            undelivered: Any = self.client.xrange(self.stream, min=f"({_text(last_delivered)}", count=1)
        except redis.RedisError as exc:
            raise EventStreamError(f"Redis is not reachable: {exc}") from exc
        candidates = [_text(pending["min"])] if pending["pending"] else []
        candidates += [_text(entry[0]) for entry in undelivered]
        if not candidates:
            return None
        oldest_ms = min(int(entry_id.split("-")[0]) for entry_id in candidates)
        return datetime.fromtimestamp(oldest_ms / 1000, UTC)

    def close(self) -> None:
        self.client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _line(value: bytes) -> bytes:
    """An entry's lines, each ending in a newline (entries of one event written before 0.1 had none)."""
    return value if value.endswith(b"\n") else value + b"\n"
