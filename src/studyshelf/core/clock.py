"""Time, in one place, so tests can move it.

`Services.clock` is the clock of a running process: jobs, drains and requests ask it for "now" (and pass
that on as a parameter). Tests give Services a `MovableClock` and `advance` it instead of sleeping.
Durations are measured with `time.monotonic`, which no clock here replaces.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

# Seconds two instances' clocks may disagree by: a time limit set by one is honoured by another up to this
# late (tokens, signed URLs), and what guards a limit (a spent nonce) is kept this much longer (twice: the
# keeper's clock may run ahead of the checker's).
CLOCK_SKEW = 60


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Treat a naive datetime (as SQLite returns them) as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    def time(self) -> float:
        """The current time in unix seconds (for signed tokens and URLs)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def time(self) -> float:
        return self.now().timestamp()


class MovableClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = as_utc(start) if start is not None else utcnow()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock `seconds` ahead (never back); return the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now
