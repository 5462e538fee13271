"""Beacon replays and rates are refused per cluster: in the database, or in Redis first when it is set."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.analytics.models import BeaconView
from studyshelf.core.db import unit_of_work
from studyshelf.settings import Settings
from tests.analytics.support import REDIS_URL
from tests.cluster.conftest import Cluster, cluster_settings
from tests.conftest import World
from tests.html import parse_html
from tests.library.support import assert_problem, uploaded
from tests.links.support import EMBEDDED, create_link, link_path

URL = "/api/v1/events"
PER_MINUTE = 5


@pytest.fixture
def settings(tmp_path: Path, db_url: str, shared_store: str, redis_prefix: str) -> Settings:
    limits: dict[str, Any] = {"beacon_events_per_view": 100, "beacon_rate_per_minute": PER_MINUTE}
    if shared_store == "redis":
        limits |= {"redis_url": REDIS_URL, "redis_key_prefix": redis_prefix}
    return cluster_settings(tmp_path, db_url, **limits)


def open_viewer(cluster: Cluster) -> str:
    """A page view counted on A; its beacon token."""
    world = World(cluster.a)
    owner = world.member(world.org())
    notes = uploaded(owner, owner.root_folder_id, "notes.txt", b"lecture notes")
    path = link_path(create_link(owner, notes["id"]))
    page = cluster.client("a").get(path, headers=EMBEDDED)
    assert page.status_code == 200, page.text
    cluster.open_queued_views()
    return parse_html(page).attr("[data-beacon-token]", "data-beacon-token")


def beacon(token: str, seq: int, cluster: Cluster) -> dict[str, Any]:
    return {"token": token, "type": "load_ok", "seq": seq, "t": int(cluster.a.clock.time() * 1000), "load_ms": 300}


def stored_beacons(cluster: Cluster) -> int:
    with unit_of_work(cluster.a.read_sessions) as db:
        return sum(db.scalars(select(BeaconView.events)))


def test_a_replay_sent_to_the_other_instance_is_refused(cluster: Cluster, shared_store: str, redis_prefix: str) -> None:
    token = open_viewer(cluster)
    a, b = cluster.client("a"), cluster.client("b")
    assert a.post(URL, json=beacon(token, 0, cluster)).status_code == 204
    assert_problem(b.post(URL, json=beacon(token, 0, cluster)), 409, "conflict")
    assert_problem(a.post(URL, json=beacon(token, 0, cluster)), 409, "conflict")
    assert b.post(URL, json=beacon(token, 1, cluster)).status_code == 204
    assert stored_beacons(cluster) == 2
    if shared_store == "redis":  # Redis saw them first
        client = redis.Redis.from_url(REDIS_URL)
        (seen,) = client.keys(redis_prefix + "beacon:*:seqs")
        assert client.smembers(seen) == {b"0", b"1"}
        client.close()


def test_the_rate_per_minute_is_exact_across_instances(cluster: Cluster) -> None:
    token = open_viewer(cluster)
    browser, balancer = cluster.browser()
    answers = [browser.post(URL, json=beacon(token, seq, cluster)).status_code for seq in range(PER_MINUTE + 3)]
    assert answers == [204] * PER_MINUTE + [429] * 3
    assert {name for name, _ in balancer.served} == {"a", "b"}
    for instance in (cluster.a, cluster.b):
        instance.clock.advance(60)  # type: ignore[attr-defined]  # a MovableClock
    # A new minute: refused beacons used nothing up, so their seqs may come again.
    later = [
        browser.post(URL, json=beacon(token, seq, cluster)).status_code for seq in range(PER_MINUTE, 2 * PER_MINUTE + 1)
    ]
    assert later == [204] * PER_MINUTE + [429]
    assert stored_beacons(cluster) == 2 * PER_MINUTE


def test_concurrent_beacons_on_both_instances_store_each_seq_once(cluster: Cluster) -> None:
    token = open_viewer(cluster)
    cluster.warm_up("POST", URL)
    clients = [cluster.client("a"), cluster.client("b")]

    def send(n: int) -> int:
        client: TestClient = clients[n % 2]
        return client.post(URL, json=beacon(token, n // 2, cluster)).status_code  # each seq sent to both

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(2 * PER_MINUTE)))
    assert sorted(answers) == [204] * PER_MINUTE + [409] * PER_MINUTE
    assert stored_beacons(cluster) == PER_MINUTE
