"""Database leases (core/lease.py) on SQLite and PostgreSQL: one holder at a time, expiry, renew, release."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from studyshelf.core import lease
from studyshelf.services import Services

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TTL = timedelta(minutes=30)


def test_one_holder_until_release(services: Services) -> None:
    sessions = services.write_sessions
    first = lease.acquire(sessions, "demo", holder="a", now=NOW, ttl=TTL)
    assert first is not None
    assert lease.acquire(sessions, "demo", holder="b", now=NOW + timedelta(minutes=1), ttl=TTL) is None
    assert lease.expiry(sessions, "demo") == NOW + TTL
    lease.release(sessions, first, memo="left for the next")
    second = lease.acquire(sessions, "demo", holder="b", now=NOW + timedelta(minutes=2), ttl=TTL)
    assert second is not None
    assert second.memo == "left for the next"
    assert lease.expiry(sessions, "other") is None


def test_an_expired_lease_is_taken_over_and_its_holder_can_no_longer_renew_or_release(services: Services) -> None:
    sessions = services.write_sessions
    crashed = lease.acquire(sessions, "demo", holder="a", now=NOW, ttl=TTL)
    assert crashed is not None
    later = NOW + TTL + timedelta(seconds=1)
    taker = lease.acquire(sessions, "demo", holder="b", now=later, ttl=TTL)
    assert taker is not None
    assert not lease.renew(sessions, crashed, now=later, ttl=TTL)
    lease.release(sessions, crashed)
    assert lease.expiry(sessions, "demo") == later + TTL  # still b's


def test_renewing_pushes_the_expiry(services: Services) -> None:
    sessions = services.write_sessions
    held = lease.acquire(sessions, "demo", holder="a", now=NOW, ttl=TTL)
    assert held is not None
    assert lease.renew(sessions, held, now=NOW + TTL - timedelta(seconds=1), ttl=TTL)
    assert lease.acquire(sessions, "demo", holder="b", now=NOW + TTL + timedelta(seconds=1), ttl=TTL) is None


def test_idle_since_waits_for_the_interval_after_the_last_run(services: Services) -> None:
    sessions = services.write_sessions
    held = lease.acquire(sessions, "job", holder="a", now=NOW, ttl=TTL, idle_since=NOW - timedelta(hours=1))
    assert held is not None
    lease.release(sessions, held, finished_at=NOW)
    soon = NOW + timedelta(minutes=10)
    assert lease.acquire(sessions, "job", holder="b", now=soon, ttl=TTL, idle_since=soon - timedelta(hours=1)) is None
    later = NOW + timedelta(hours=1, seconds=1)
    assert lease.acquire(sessions, "job", holder="b", now=later, ttl=TTL, idle_since=later - timedelta(hours=1))


def _race(services: Services, *, now: datetime, contenders: int) -> list[str]:
    """Start `contenders` threads at once, each trying to take the lease; return the winners."""
    barrier = threading.Barrier(contenders)
    won: list[str] = []
    failures: list[BaseException] = []

    def contend(holder: str) -> None:
        try:
            barrier.wait()
            if lease.acquire(services.write_sessions, "race", holder=holder, now=now, ttl=TTL) is not None:
                won.append(holder)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=contend, args=(f"h{n}",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return won


def test_contenders_racing_for_a_lease_leave_exactly_one_winner(services: Services) -> None:
    for round_ in range(3):  # the row is new in the first round, expired in the others
        now = NOW + round_ * (TTL + timedelta(seconds=1))
        assert len(_race(services, now=now, contenders=6)) == 1
