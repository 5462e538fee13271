"""An in-process event stream for tests: same semantics as the others, nothing on disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime

from studyshelf.core.clock import Clock, SystemClock
from studyshelf.events.interface import Batch
from studyshelf.events.schema import Event


class MemoryEventStream:
    def __init__(self, *, claim_idle_seconds: float = 30.0, clock: Clock | None = None) -> None:
        self.claim_idle_seconds = claim_idle_seconds
        self.clock = clock or SystemClock()
        self._lock = threading.Condition()
        self._next = 0
        self._new: dict[int, Event] = {}
        self._accepted: dict[int, datetime] = {}  # seq → when publish took it
        self._pending: dict[int, tuple[str, float]] = {}  # seq → (consumer, delivered at)

    def publish(self, events: Sequence[Event]) -> None:
        accepted = self.clock.now()
        with self._lock:
            for event in events:
                self._new[self._next] = event
                self._accepted[self._next] = accepted
                self._next += 1
            self._lock.notify_all()

    def read(self, *, consumer: str, max_count: int = 500, block_ms: int = 0) -> Batch:
        deadline = time.monotonic() + block_ms / 1000
        with self._lock:
            while True:
                now = time.monotonic()
                stale = [
                    seq
                    for seq, (owner, at) in self._pending.items()
                    if owner != consumer and now - at >= self.claim_idle_seconds
                ]
                fresh = [seq for seq in self._new if seq not in self._pending]
                chosen = sorted(stale + fresh)[:max_count]
                if chosen or now >= deadline:
                    break
                self._lock.wait(deadline - now)
            for seq in chosen:
                self._pending[seq] = (consumer, now)
            return Batch([self._new[seq] for seq in chosen], tuple(chosen))

    def ack(self, batch: Batch) -> None:
        assert isinstance(batch.token, tuple)
        with self._lock:
            for seq in batch.token:
                self._new.pop(seq, None)
                self._accepted.pop(seq, None)
                self._pending.pop(seq, None)

    def backlog(self) -> int:
        with self._lock:
            return len(self._new)

    def oldest_accepted_at(self) -> datetime | None:
        with self._lock:
            return next(iter(self._accepted.values()), None)  # publishes add in order, acks only remove

    def close(self) -> None:
        return None
