"""One instance's Redis connection dropped mid-request: the beacon falls back to the database, and nothing
is counted twice, during the outage or after Redis comes back empty.

The Redis here is a throwaway server this test starts (and kills) under its temp dir; the machine's Redis is
not touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from studyshelf.settings import Settings
from tests.cluster.conftest import DEADLINE, Cluster, cluster_settings, wait_for
from tests.cluster.test_beacons import PER_MINUTE, beacon, open_viewer, stored_beacons
from tests.conftest import require_service
from tests.library.support import assert_problem

URL = "/api/v1/events"
REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ThrowawayRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, "the throwaway Redis to start")

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def has_unread_request(self) -> bool:
        """Whether a client's bytes wait, unread, in the (stopped) server's sockets."""
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            unread = int(fields[4].split(":")[1], 16)
            if local_port == self.port and fields[3] == "01" and unread > 0:  # 01: an established connection
                return True
        return False

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(DEADLINE)
        self.process = None


@pytest.fixture
def shared_store() -> str:
    return "redis"


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    require_service(shutil.which("redis-server") is not None, "redis-server (Debian's redis-server package)")
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, throwaway_redis: ThrowawayRedis) -> Settings:
    return cluster_settings(
        tmp_path,
        db_url,
        redis_url=throwaway_redis.url,
        beacon_events_per_view=100,
        beacon_rate_per_minute=PER_MINUTE,
    )


def test_a_beacon_whose_redis_dies_mid_request_is_stored_once(
    cluster: Cluster, throwaway_redis: ThrowawayRedis
) -> None:
    token = open_viewer(cluster)
    a, b = cluster.client("a"), cluster.client("b")
    assert a.post(URL, json=beacon(token, 0, cluster)).status_code == 204  # Redis saw it first

    throwaway_redis.pause()
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(b.post(URL, json=beacon(token, 1, cluster))))
    request.start()
    wait_for(throwaway_redis.has_unread_request, "B's Redis command to be in flight")
    throwaway_redis.kill()  # the connection drops under the waiting request
    request.join(DEADLINE)
    assert [answer.status_code for answer in answers] == [204]  # the database alone decided

    # Redis is gone: both instances fall back, replays are refused and nothing counts twice.
    assert_problem(b.post(URL, json=beacon(token, 0, cluster)), 409, "conflict")
    assert_problem(a.post(URL, json=beacon(token, 1, cluster)), 409, "conflict")
    assert stored_beacons(cluster) == 2

    # Redis comes back empty: it admits seq 1 again, the database refuses it, and Redis is given it back.
    throwaway_redis.start()
    assert_problem(a.post(URL, json=beacon(token, 1, cluster)), 409, "conflict")
    statuses = [b.post(URL, json=beacon(token, seq, cluster)).status_code for seq in range(2, 2 + PER_MINUTE)]
    assert statuses == [204] * (PER_MINUTE - 2) + [429] * 2  # the minute's rate held through the outage
    assert stored_beacons(cluster) == PER_MINUTE
