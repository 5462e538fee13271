"""The scale event buffer: a Redis stream with one consumer group of warehouse workers.

XADD answers once the entry is in Redis (run Redis with `appendonly yes` and `appendfsync everysec`
or `always` for the durability you want). Workers read with XREADGROUP, and XACK+XDEL an entry only
after the warehouse committed it; entries a dead worker left pending longer than `claim_idle_seconds`
are taken over with XAUTOCLAIM. Delivery is at least once; the warehouse drops duplicates by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from studyshelf.events.interface import Batch, EventStreamError
from studyshelf.events.schema import Event

GROUP = "warehouse"


class RedisStreamsEventStream:
    def __init__(self, url: str, *, stream: str = "studyshelf:events", claim_idle_seconds: float = 30.0) -> None:
        self.client: redis.Redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.stream = stream
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._group_ready = False

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
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self.stream, {"e": event.to_json()})
            pipe.execute()
        except redis.RedisError as exc:
            raise EventStreamError(f"could not publish to Redis: {exc}") from exc

    def read(self, *, consumer: str, max_count: int = 500, block_ms: int = 0) -> Batch:
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
        return Batch([Event.from_json(fields[b"e"]) for _id, fields in entries], [entry[0] for entry in entries])

    def ack(self, batch: Batch) -> None:
        ids = batch.token
        assert isinstance(ids, list)
        if not ids:
            return
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()
        except redis.RedisError as exc:
            raise EventStreamError(f"could not ack in Redis: {exc}") from exc

    def backlog(self) -> int:
        try:
            return int(self.client.xlen(self.stream))
        except redis.RedisError as exc:
            raise EventStreamError(f"Redis is not reachable: {exc}") from exc

    def close(self) -> None:
        self.client.close()
