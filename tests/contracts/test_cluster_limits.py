"""One behaviour suite for every ClusterLimits: memory, the app database (SQLite, PostgreSQL) and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from studyshelf.limits import ClusterLimits, DatabaseClusterLimits, LimitsUnavailable, Verdict
from studyshelf.limits.fallback import FallbackClusterLimits
from studyshelf.limits.memory import MemoryClusterLimits
from studyshelf.limits.redis_limits import RedisClusterLimits
from studyshelf.services import Services
from tests.analytics.support import REDIS_URL, redis_available
from tests.conftest import require_service


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "database", "redis", "redis-down-database"])
def limits(request: pytest.FixtureRequest, services: Services, redis_prefix: str) -> Iterator[ClusterLimits]:
    kind = request.param
    if kind == "memory":
        made: ClusterLimits = MemoryClusterLimits()
    elif kind == "database":
        made = DatabaseClusterLimits(services.write_sessions)
    elif kind == "redis":
        require_service(redis_available(), "Redis")
        made = RedisClusterLimits(REDIS_URL, prefix=redis_prefix)
    else:  # nothing listens there: every admission falls back to the database
        made = FallbackClusterLimits(
            RedisClusterLimits("redis://127.0.0.1:9/0", prefix=redis_prefix, timeout=0.5),
            DatabaseClusterLimits(services.write_sessions),
        )
    yield made
    made.close()


@pytest.fixture
def redis_prefix() -> str:
    return f"studyshelf-test:{uuid.uuid4().hex[:12]}:"


def admit(limits: ClusterLimits, item: str, *, window: str = "w", limit: int = 2) -> Verdict:
    return limits.admit(seen="s", item=item, window=window, limit=limit, seen_ttl=60, window_ttl=60)


def test_an_item_is_admitted_once_and_the_window_counts_to_its_limit(limits: ClusterLimits) -> None:
    assert admit(limits, "one") is Verdict.ADMITTED
    assert admit(limits, "one") is Verdict.REPEATED
    assert admit(limits, "two") is Verdict.ADMITTED
    assert admit(limits, "three") is Verdict.OVER_LIMIT
    assert admit(limits, "three", window="other") is Verdict.ADMITTED  # windows count apart


def test_a_withdrawn_item_gives_its_count_back(limits: ClusterLimits) -> None:
    assert admit(limits, "one") is Verdict.ADMITTED
    assert admit(limits, "two") is Verdict.ADMITTED
    limits.withdraw(seen="s", item="one", window="w")
    assert admit(limits, "three") is Verdict.ADMITTED
    limits.withdraw(seen="s", item="never", window="w")  # nothing marked: nothing given back
    assert admit(limits, "four") is Verdict.OVER_LIMIT


def test_concurrent_admissions_of_one_item_admit_it_once(limits: ClusterLimits) -> None:
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda _: admit(limits, "same", limit=100), range(16)))
    assert verdicts.count(Verdict.ADMITTED) == 1
    assert set(verdicts) == {Verdict.ADMITTED, Verdict.REPEATED}


def test_the_database_forgets_marks_and_windows_when_they_expire(services: Services) -> None:
    clock = Clock()
    limits = DatabaseClusterLimits(services.write_sessions, clock=clock)
    assert admit(limits, "one", limit=1) is Verdict.ADMITTED
    assert admit(limits, "two", limit=1) is Verdict.OVER_LIMIT
    clock.now += 61
    assert admit(limits, "one", limit=1) is Verdict.ADMITTED  # both the mark and the window have expired


def test_redis_that_does_not_answer_says_so() -> None:
    limits = RedisClusterLimits("redis://127.0.0.1:9/0", prefix="x:", timeout=0.5)
    with pytest.raises(LimitsUnavailable):
        admit(limits, "one")
    limits.close()
