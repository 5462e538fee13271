"""ClusterLimits in this process's memory: for tests, and the contract suite's reference."""

from __future__ import annotations

import threading

from studyshelf.limits.interface import Verdict


class MemoryClusterLimits:
    """Expiry is not modelled: tests that need it use Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        self._counts: dict[str, int] = {}

    def admit(self, *, seen: str, item: str, window: str, limit: int, seen_ttl: int, window_ttl: int) -> Verdict:
        with self._lock:
            items = self._seen.setdefault(seen, set())
            if item in items:
                return Verdict.REPEATED
            if self._counts.get(window, 0) >= limit:
                return Verdict.OVER_LIMIT
            items.add(item)
            self._counts[window] = self._counts.get(window, 0) + 1
            return Verdict.ADMITTED

    def withdraw(self, *, seen: str, item: str, window: str) -> None:
        with self._lock:
            items = self._seen.get(seen, set())
            if item in items:
                items.discard(item)
                self._counts[window] = max(0, self._counts.get(window, 0) - 1)

    def close(self) -> None:
        pass
