"""Inline media bytes (playback, ranged or whole), tallied per viewer and file, reported as few `transfer` events.

A player asks for one file in dozens of Range requests; one event each would swamp the event stream
and say nothing more. The /m/ middleware adds each response's bytes to a tally in process memory,
keyed by (link or launch scope, version, client address, user agent): one viewer's playback of one
file. An entry is reported (one `transfer` event: bytes only, never a view or a load) when it has been
idle for `idle` seconds or open for `max_open`, when the tally holds `max_entries` entries (all of
them), and at shutdown. A crash loses the bytes of the last minutes of playback, never a view.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("studyshelf.delivery")

IDLE_SECONDS = 30.0
MAX_OPEN_SECONDS = 300.0
MAX_ENTRIES = 10_000
TICK_SECONDS = 5.0


@dataclass(frozen=True)
class TransferKey:
    link_id: str  # a share link id, or a launch scope (`lti-…`)
    version_id: str
    client_ip: str
    user_agent: str


@dataclass
class Transfer:
    """The bytes one viewer received of one file version, through one link or launch, since `started`."""

    key: TransferKey
    referer: str
    started: float  # wall clock (unix seconds, from the services' clock)
    last: float
    bytes: int = 0
    responses: int = 0

    @property
    def session(self) -> str:
        """A stable id for this tally entry (the viewer session of the event)."""
        k = self.key
        text = f"{k.link_id}|{k.version_id}|{k.client_ip}|{k.user_agent}|{self.started}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


Report = Callable[[list[Transfer]], None]
"""Receives entries to report; runs in the caller's thread (a worker thread or the tally's ticker)."""


class TransferTally:
    """Thread-safe per-process tally. `add` is cheap (a dict update); reporting happens outside the lock."""

    def __init__(
        self,
        report: Report,
        *,
        idle: float = IDLE_SECONDS,
        max_open: float = MAX_OPEN_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float],
        ticker: bool = True,
    ) -> None:
        self.report = report
        self.idle = idle
        self.max_open = max_open
        self.max_entries = max_entries
        self.clock = clock
        self._ticker = ticker
        self._lock = threading.Lock()
        self._entries: dict[TransferKey, Transfer] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, key: TransferKey, sent: int, *, referer: str = "") -> list[Transfer]:
        """Count `sent` bytes; return the entries now due because the tally is full (the caller reports them)."""
        if sent <= 0:
            return []
        now = self.clock()
        full: list[Transfer] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self.max_entries:
                    full = list(self._entries.values())
                    self._entries.clear()
                entry = self._entries[key] = Transfer(key=key, referer=referer, started=now, last=now)
            entry.bytes += sent
            entry.responses += 1
            entry.last = now
            self._start_ticker()
        return full

    def take_due(self) -> list[Transfer]:
        """Remove and return entries idle for `idle` seconds or open for `max_open`."""
        now = self.clock()
        with self._lock:
            due = [e for e in self._entries.values() if now - e.last >= self.idle or now - e.started >= self.max_open]
            for entry in due:
                del self._entries[entry.key]
        return due

    def take_all(self) -> list[Transfer]:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        return entries

    def flush_due(self) -> int:
        due = self.take_due()
        if due:
            self.report(due)
        return len(due)

    def flush_all(self) -> int:
        """Report everything now (shutdown)."""
        entries = self.take_all()
        if entries:
            self.report(entries)
        return len(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _start_ticker(self) -> None:
        # Called with the lock held: one daemon thread per tally, started by the first bytes counted.
        if not self._ticker or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._tick, name="studyshelf-transfers", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.flush_due()
            except Exception:
                log.exception("reporting media transfers failed")

    def stop(self) -> None:
        """Stop the ticker and report what is left."""
        self._stop.set()
        self.flush_all()
