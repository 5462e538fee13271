"""The clock in Services: the system's by default; a movable one that tests advance instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from studyshelf.core.clock import MovableClock, SystemClock, utcnow


def test_the_system_clock_tells_the_time() -> None:
    before = utcnow()
    clock = SystemClock()
    assert before <= clock.now() <= utcnow()
    assert abs(clock.time() - clock.now().timestamp()) < 1


def test_a_movable_clock_stands_still_until_advanced() -> None:
    clock = MovableClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert clock.advance(90) == datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC)
    assert clock.time() == datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_a_naive_start_is_taken_as_utc() -> None:
    naive = datetime(2026, 3, 1)  # noqa: DTZ001 - the point of the test: SQLite hands back naive datetimes
    assert MovableClock(naive).now() == datetime(2026, 3, 1, tzinfo=UTC)
    assert MovableClock().now() - utcnow() < timedelta(seconds=1)
