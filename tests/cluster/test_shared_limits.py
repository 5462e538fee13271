"""What was per process and is now per cluster: recording refused media URLs, and the platforms' key sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from studyshelf.core.db import unit_of_work
from studyshelf.core.outbound import OutboundClient
from studyshelf.delivery.models import Refusal
from studyshelf.lti.pages import platform_keys
from studyshelf.lti.platform_keys import MIN_FORCED_REFETCH_SECONDS
from studyshelf.settings import Settings
from tests.analytics.support import REDIS_URL
from tests.cluster.conftest import Cluster, cluster_settings
from tests.lti.conftest import simulator
from tests.lti.platform import Platform, Simulator

__all__ = ["simulator"]  # the LTI suite's platform simulator, one per session

BAD_MEDIA_URL = "/m/k1/4102444800/not-a-link/v/sha/1/0/text~plain/0/forged/notes.txt"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, shared_store: str, redis_prefix: str) -> Settings:
    extra: dict[str, Any] = {}
    if shared_store == "redis":
        extra = {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    return cluster_settings(tmp_path, db_url, **extra)


def recorded_refusals(cluster: Cluster) -> int:
    with unit_of_work(cluster.a.read_sessions) as db:
        return db.scalar(select(func.count()).select_from(Refusal).where(Refusal.reason == "bad-signature")) or 0


def test_a_client_refused_on_both_instances_in_one_second_is_recorded_once(cluster: Cluster) -> None:
    for instance in ("a", "b", "a", "b"):  # each instance's own first line lets its first one through
        response = cluster.client(instance).get(BAD_MEDIA_URL)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
    assert recorded_refusals(cluster) == 1


def test_refusals_of_different_clients_are_each_recorded(cluster: Cluster) -> None:
    for number in range(3):  # through the balancer: the instances take turns
        browser, _ = cluster.browser(client=(f"198.51.100.{number + 1}", 40000))
        assert browser.get(BAD_MEDIA_URL).status_code == 403
    assert recorded_refusals(cluster) == 3


class CountingClient:
    """The outbound client's `get` against the platform simulator, counting what reaches the platform."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.fetches = 0
        self.real = OutboundClient(allowed_networks=["127.0.0.0/8"])

    def get(self, url: str, *, what: str) -> Any:
        self.fetches += 1
        return self.real.get(url, what=what)


def test_one_key_set_fetch_serves_every_instance(cluster: Cluster, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    client = CountingClient(platform)
    outbound = cast(OutboundClient, client)
    a, b = platform_keys(cluster.a), platform_keys(cluster.b)
    assert a.key_for(outbound, platform.jwks_url, platform.kid, max_age=300) is not None
    assert b.key_for(outbound, platform.jwks_url, platform.kid, max_age=300) is not None
    assert client.fetches == 1  # B found what A fetched
    # A token with a kid the platform never published: one forced refetch for the whole cluster.
    assert a.key_for(outbound, platform.jwks_url, "made-up", max_age=300) is None
    assert b.key_for(outbound, platform.jwks_url, "made-up", max_age=300) is None
    assert client.fetches == 2
    for services in (cluster.a, cluster.b):
        services.clock.advance(MIN_FORCED_REFETCH_SECONDS)  # type: ignore[attr-defined]  # a MovableClock
    assert b.key_for(outbound, platform.jwks_url, "made-up", max_age=300) is None
    assert client.fetches == 3
    for services in (cluster.a, cluster.b):
        services.clock.advance(300)  # type: ignore[attr-defined]  # a MovableClock
    assert a.key_for(outbound, platform.jwks_url, platform.kid, max_age=300) is not None
    assert b.key_for(outbound, platform.jwks_url, platform.kid, max_age=300) is not None
    assert client.fetches == 4  # expired: fetched again once, by A
