"""Event buffers between the web tier and the warehouse; build_event_stream() is the one place that chooses."""

from __future__ import annotations

from studyshelf.events.interface import (
    Batch,
    DiscardHits,
    EventStream,
    EventStreamError,
    HitSink,
    ingest_lag_seconds,
)
from studyshelf.events.schema import Event, Hit
from studyshelf.settings import Settings

__all__ = [
    "Batch",
    "DiscardHits",
    "Event",
    "EventStream",
    "EventStreamError",
    "Hit",
    "HitSink",
    "build_event_stream",
    "ingest_lag_seconds",
]


def build_event_stream(settings: Settings) -> EventStream:
    """Redis Streams when STUDYSHELF_REDIS_URL is set, else the local spool (memory:// for tests)."""
    if settings.event_stream_url == "memory://":
        from studyshelf.events.memory import MemoryEventStream

        return MemoryEventStream(claim_idle_seconds=settings.event_claim_idle_seconds)
    if settings.redis_url:
        from studyshelf.events.redis_streams import RedisStreamsEventStream

        return RedisStreamsEventStream(
            settings.redis_url, stream=settings.redis_stream, claim_idle_seconds=settings.event_claim_idle_seconds
        )
    from studyshelf.events.spool import SpoolEventStream

    return SpoolEventStream(
        settings.data_dir / "events",
        fsync_ms=settings.spool_fsync_ms,
        fsync_events=settings.spool_fsync_events,
        segment_bytes=settings.spool_segment_bytes,
        claim_idle_seconds=settings.event_claim_idle_seconds,
    )
