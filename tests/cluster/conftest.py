"""Two app instances over one database, data dir and (optionally) Redis, behind a round-robin balancer.

Each instance is built by `create_app` from its own Services (its own engine, key ring, collector,
caches and clock), as two processes behind a load balancer would be; the balancer sends consecutive
requests to alternate instances unless a test names the next one. The event buffer and the warehouse
are each instance's own (`memory://`, `:memory:`): the analytics pipeline is not what these tests are about.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from studyshelf.analytics.collect import Collector
from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock, utcnow
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.analytics.support import REDIS_URL, redis_available
from tests.conftest import _truncate_all, make_settings, require_service

BASE = "http://testserver"
DEADLINE = 30.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds, failing after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Balancer:
    """Round robin over the instances, like a load balancer without sticky sessions."""

    def __init__(self, instances: dict[str, FastAPI]) -> None:
        self.instances = instances
        self.names = list(instances)
        self.turn = 0
        self.pinned: str | None = None
        self.served: list[tuple[str, str]] = []  # (instance, path) of every request, in order

    def next(self, name: str) -> Balancer:
        """Send the next request to `name` (then alternate again from there)."""
        self.pinned = name
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.pinned is not None:
            name, self.pinned = self.pinned, None
            self.turn = self.names.index(name)
        name = self.names[self.turn % len(self.names)]
        self.turn += 1
        self.served.append((name, str(scope.get("path", ""))))
        await self.instances[name](scope, receive, send)


@dataclass
class Cluster:
    a: Services
    b: Services
    apps: dict[str, FastAPI] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.apps = {"a": create_app(services=self.a), "b": create_app(services=self.b)}

    def instance(self, name: str) -> Services:
        return self.a if name == "a" else self.b

    def browser(self, client: tuple[str, int] = ("testclient", 50000)) -> tuple[TestClient, Balancer]:
        """A browser behind the balancer: its cookies go to whichever instance serves it."""
        balancer = Balancer(self.apps)
        return TestClient(balancer, base_url=BASE, client=client), balancer

    def client(self, name: str) -> TestClient:
        """A client talking to one instance only."""
        return TestClient(self.apps[name], base_url=BASE)

    def open_queued_views(self) -> None:
        """Open the page views each instance queued for their beacons: their lifespan's thread does it every 50 ms,
        and these apps run none (a real page loads before it reports)."""
        for app in self.apps.values():
            collector = app.state.services.hits
            if isinstance(collector, Collector):
                collector.views.flush()

    def warm_up(self, method: str, path: str) -> None:
        """One request to the route on each instance before a test sends it requests from several threads.

        FastAPI and pydantic finish some schemas on first use, and the warning filters they switch meanwhile
        are not thread-safe: two first uses at once can turn an ignored warning into an error.
        """
        for name in self.apps:
            assert self.client(name).request(method, path, content=b"{}").status_code < 500


@pytest.fixture(params=["db", "redis"])
def shared_store(request: pytest.FixtureRequest) -> str:
    """Where limits shared by the instances live: the database alone, or Redis first."""
    if request.param == "redis":
        require_service(redis_available(), "Redis")
    return str(request.param)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    prefix = f"studyshelf-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    if redis_available():
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def cluster_settings(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        base_url=BASE,
        event_stream_url="memory://",
        warehouse_url="duckdb://:memory:",
        outbound_allowed_networks=["127.0.0.0/8"],  # the LTI platform simulator listens on loopback
        **overrides,
    )


def start_cluster(settings: Settings, *, skew_seconds: float = 0, b_settings: Settings | None = None) -> Cluster:
    """Two instances on clocks `skew_seconds` apart (B ahead when positive), both a little ahead of real time."""
    start = utcnow().replace(microsecond=0) + timedelta(minutes=5)
    a = replace(build_services(settings), clock=MovableClock(start))
    b = replace(build_services(b_settings or settings), clock=MovableClock(start + timedelta(seconds=skew_seconds)))
    return Cluster(a, b)


def stop_cluster(cluster: Cluster) -> None:
    for app in cluster.apps.values():
        hits = app.state.services.hits
        if isinstance(hits, Collector):
            hits.close()
    for instance in (cluster.a, cluster.b):
        instance.warehouse.close()
        instance.events.close()
    if cluster.a.engine.dialect.name == "postgresql":
        _truncate_all(cluster.a)
    cluster.a.engine.dispose()
    cluster.b.engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, shared_store: str, redis_prefix: str) -> Settings:
    if shared_store == "redis":
        return cluster_settings(tmp_path, db_url, redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    return cluster_settings(tmp_path, db_url)


@pytest.fixture
def cluster(settings: Settings) -> Iterator[Cluster]:
    built = start_cluster(settings)
    yield built
    stop_cluster(built)
