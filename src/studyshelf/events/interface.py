"""The event stream: an accepted event is durable when `publish` returns; consumers ack after the warehouse commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Protocol

from studyshelf.events.schema import Event, Hit, decode_lines, encode_lines


class EventStreamError(Exception):
    """The buffer could not take or give events (disk full, Redis down)."""


class Batch:
    """Events handed to one consumer; `ack` it once they are safely in the warehouse.

    A backend gives either the events or their JSON lines (what the spool and Redis keep); the other
    form is made on first use, so a drainer that hands the lines to the warehouse never builds objects.
    """

    def __init__(
        self, events: list[Event] | None = None, token: object = None, *, lines: bytes | None = None, count: int = 0
    ) -> None:
        self.token = token  # backend-specific: what `ack` needs to forget exactly these events
        if lines is None and events is None:
            events = []
        if events is not None:
            self.__dict__["events"] = events
            count = len(events)
        elif lines is not None:
            self.__dict__["lines"] = lines
        self.count = count  # events (lines) in the batch, before any unreadable line is dropped

    @cached_property
    def events(self) -> list[Event]:
        return decode_lines(self.lines)

    @cached_property
    def lines(self) -> bytes:
        return encode_lines(self.events)


class EventStream(Protocol):
    """An append-only, at-least-once buffer between the web tier and the warehouse."""

    def publish(self, events: Sequence[Event]) -> None:
        """Append events; they survive a crash of this process once this returns."""
        ...

    def read(self, *, consumer: str, max_count: int = 500, block_ms: int = 0) -> Batch:
        """Events not yet acked: first those a dead consumer left pending, then new ones (may be empty).

        At most `max_count` publishes' worth: the spool counts events; Redis counts stream entries, each the
        events of one publish (at most ENTRY_EVENTS), so one publish's events are never split up."""
        ...

    def ack(self, batch: Batch) -> None:
        """Forget a batch for good (after the warehouse committed it)."""
        ...

    def backlog(self) -> int:
        """Events accepted but not yet acked."""
        ...

    def oldest_accepted_at(self) -> datetime | None:
        """When the buffer accepted the oldest event not yet acked (read or not); None when none waits.

        The ingest lag is "now" minus this: how long the oldest undrained event has waited, whatever its `ts`
        (a beacon replayed after an hour offline is not a lag)."""
        ...

    def close(self) -> None: ...


def ingest_lag_seconds(stream: EventStream, now: datetime) -> float:
    """Seconds the oldest event not yet acked has waited in the buffer (0 when none waits)."""
    oldest = stream.oldest_accepted_at()
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


class HitSink(Protocol):
    """Where delivery reports what it served or refused; analytics enriches and publishes it."""

    def record(self, hit: Hit) -> None: ...

    async def record_async(self, hit: Hit) -> None:
        """`record` from an event loop, without blocking it (the durable publish is awaited, not waited for)."""
        ...

    def event_line(self, hit: Hit) -> bytes | None:
        """The JSON line `record` would publish for a hit whose `event_id` is set; None when nothing is collected."""
        ...


class DiscardHits:
    """The sink of a process that collects nothing (CLI commands, workers)."""

    def record(self, hit: Hit) -> None:
        return None

    async def record_async(self, hit: Hit) -> None:
        return None

    def event_line(self, hit: Hit) -> bytes | None:
        return None
