"""The start-up check of Redis persistence: the machine's Redis (no persistence), and a throwaway one with AOF.

The machine's Redis is only read. Every other state is set on a `redis-server` this module starts in a temp dir.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from studyshelf.events.redis_persistence import check_redis_persistence, log_redis_persistence
from tests.analytics.support import REDIS_URL, redis_available
from tests.conftest import require_service
from tests.s3_support import free_port

LIMITED_PASSWORD = "limited-secret-pw"


@pytest.fixture(scope="module")
def aof_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own with `appendonly yes` (the state each test needs is set with CONFIG SET)."""
    binary = shutil.which("redis-server")
    require_service(binary is not None, "redis-server")
    assert binary is not None
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(  # noqa: S603 - a fixed argv of our own
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--appendonly", "yes"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(url)
        yield url
    finally:
        server.kill()  # a throwaway: nothing to save, and a graceful shutdown may rewrite the AOF first
        server.wait(timeout=30)


def _wait_for_ping(url: str) -> None:
    deadline = time.monotonic() + 30
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()


def _configure(url: str, **values: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for name, value in values.items():
            client.config_set(name, value)
    finally:
        client.close()


def test_the_machines_redis_without_persistence_gets_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    require_service(redis_available(), "Redis")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:  # only read: the machine's Redis is never reconfigured
        assert client.config_get("appendonly") == {"appendonly": "no"}, "expects Redis as .ci/run starts it"
    finally:
        client.close()
    with caplog.at_level(logging.INFO, logger="studyshelf.events"):
        found = log_redis_persistence(REDIS_URL)
    assert found is not None
    assert not found.durable
    assert "appendonly no" in found.summary
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [found.summary]


def test_aof_with_fsync_every_second_is_durable(aof_redis: str, caplog: pytest.LogCaptureFixture) -> None:
    _configure(aof_redis, appendonly="yes", appendfsync="everysec")
    with caplog.at_level(logging.INFO, logger="studyshelf.events"):
        found = log_redis_persistence(aof_redis)
    assert found is not None
    assert found.durable
    assert "at most about 1 s" in found.summary
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_aof_with_fsync_always_loses_nothing(aof_redis: str) -> None:
    _configure(aof_redis, appendonly="yes", appendfsync="always")
    found = check_redis_persistence(aof_redis)
    assert found.durable
    assert "loses no events" in found.summary


def test_aof_left_to_the_operating_system_is_not_durable(aof_redis: str) -> None:
    _configure(aof_redis, appendonly="yes", appendfsync="no")
    found = check_redis_persistence(aof_redis)
    assert not found.durable
    assert "appendfsync no" in found.summary


def test_rdb_snapshots_alone_are_not_durable(aof_redis: str) -> None:
    _configure(aof_redis, appendonly="no", appendfsync="everysec", save="900 1")
    found = check_redis_persistence(aof_redis)
    assert not found.durable
    assert "last snapshot" in found.summary


def test_eviction_of_any_key_is_not_durable_even_with_aof(aof_redis: str) -> None:
    _configure(
        aof_redis, appendonly="yes", appendfsync="everysec", maxmemory="512mb", **{"maxmemory-policy": "allkeys-lru"}
    )
    try:
        found = check_redis_persistence(aof_redis)
    finally:
        _configure(aof_redis, maxmemory="0", **{"maxmemory-policy": "noeviction"})
    assert not found.durable
    assert "allkeys-lru" in found.summary


def test_config_denied_is_reported_as_unchecked_without_the_password(aof_redis: str) -> None:
    client = redis.Redis.from_url(aof_redis)
    try:
        client.acl_setuser(
            "limited", enabled=True, passwords=[f"+{LIMITED_PASSWORD}"], keys=["*"], commands=["+@all", "-config"]
        )
    finally:
        client.close()
    limited = aof_redis.replace("redis://", f"redis://limited:{LIMITED_PASSWORD}@")
    found = check_redis_persistence(limited)
    assert not found.durable
    assert "could not be checked" in found.summary
    assert LIMITED_PASSWORD not in found.summary


def test_an_unreachable_redis_is_reported_not_raised() -> None:
    found = check_redis_persistence(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=1)
    assert not found.durable
    assert "could not be checked" in found.summary


def test_no_redis_url_checks_nothing() -> None:
    assert log_redis_persistence(None) is None


@pytest.mark.parametrize("command", [["worker"], ["serve", "--workers", "1", "--port"]], ids=["worker", "serve"])
def test_serve_and_worker_warn_at_start_up(command: list[str], tmp_path: Path) -> None:
    require_service(redis_available(), "Redis")
    if command[0] == "serve":
        command = [*command, str(free_port())]
    env = {name: value for name, value in os.environ.items() if not name.startswith("STUDYSHELF_")}
    env |= {
        "STUDYSHELF_DATA_DIR": str(tmp_path / "data"),
        "STUDYSHELF_REDIS_URL": REDIS_URL,
        "STUDYSHELF_REDIS_STREAM": f"test-startup-{tmp_path.name}",
        "STUDYSHELF_SCHEDULER_INTERVAL_SECONDS": "0",
    }
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "studyshelf", *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        assert process.stderr is not None
        seen: list[bytes] = []
        try:
            while line := process.stderr.readline():  # the warning comes before the server or the drain starts
                seen.append(line)
                if b"may lose acknowledged analytics events" in line:
                    break
            else:
                pytest.fail(f"no persistence warning; stderr was {b''.join(seen)!r}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
