"""Writes taken off the request: items a request adds, written in batches by one daemon thread per process.

For facts that decide nothing on the request that produces them (the leak radar's hourly sightings): a
request only appends to a list; the thread (started by the app's lifespan) writes everything queued every
`interval` seconds in one transaction; without it, items wait for an explicit `flush()` (tests). A crash of
the process loses at most the last interval's items, so use it only where that is acceptable, and say so.
A failed write keeps its items for the next round (up to `max_items`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("studyshelf.batches")
T = TypeVar("T")


class BackgroundBatches(Generic[T]):
    """Items queued by requests and written by `write(items)` every `interval` seconds, or on `flush()`."""

    def __init__(
        self, write: Callable[[list[T]], None], *, interval: float, name: str, max_items: int = 100_000
    ) -> None:
        self._write = write
        self.interval = interval
        self.name = name
        self.max_items = max_items
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one write at a time: the thread's and an explicit flush()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writing thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def add(self, item: T) -> None:
        """Queue one item."""
        with self._lock:
            if len(self._items) < self.max_items:
                self._items.append(item)
                return
        log.warning("%s: %d items queued, dropping one", self.name, self.max_items)

    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    def flush(self) -> int:
        """Write what is queued now; return how many items were written (0 if the write failed)."""
        with self._flushing:
            with self._lock:
                items, self._items = self._items, []
            if not items:
                return 0
            try:
                self._write(items)
            except Exception:
                log.exception("%s: writing %d items failed; they wait for the next round", self.name, len(items))
                with self._lock:
                    self._items = (items + self._items)[: self.max_items]
                return 0
            return len(items)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
