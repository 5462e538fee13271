"""Instances whose clocks disagree by up to a minute still honour each other's tokens, URLs and sessions.

Each test signs or starts something on A, moves both clocks to 30 s before it ends (as A sees it), and
uses it on B, whose clock is 60 s ahead of A's (so B sees it 30 s past its end) or 60 s behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from studyshelf.core.clock import MovableClock
from studyshelf.delivery.viewing import VIEWER_TOKEN_SECONDS
from studyshelf.settings import Settings
from tests.cluster.conftest import Cluster, start_cluster, stop_cluster
from tests.cluster.test_lti import campus_on, instance_client, signed_launch
from tests.conftest import PASSWORD, World
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path
from tests.lti.conftest import login, register, simulator
from tests.lti.platform import Simulator

__all__ = ["simulator"]
SKEW = 60


@pytest.fixture
def shared_store() -> str:
    return "db"


@pytest.fixture(params=[SKEW, -SKEW], ids=["b-ahead", "b-behind"])
def cluster(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    built = start_cluster(settings, skew_seconds=request.param)
    yield built
    stop_cluster(built)


def advance(cluster: Cluster, seconds: float) -> None:
    for instance in (cluster.a, cluster.b):
        clock = instance.clock
        assert isinstance(clock, MovableClock)
        clock.advance(seconds)


def test_a_session_started_on_a_lasts_its_life_on_b(cluster: Cluster) -> None:
    world = World(cluster.a)
    owner = world.member(world.org())
    a = cluster.client("a")
    assert a.post("/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD}).status_code == 200
    advance(cluster, timedelta(hours=cluster.a.settings.session_lifetime_hours).total_seconds() - 30)
    b = cluster.client("b")
    b.cookies = a.cookies
    assert b.get("/api/v1/me").status_code == 200


def test_media_urls_viewer_and_beacon_tokens_signed_on_a_verify_on_b(cluster: Cluster) -> None:
    world = World(cluster.a)
    owner = world.member(world.org())
    notes = uploaded(owner, owner.root_folder_id, "notes.txt", b"lecture notes")
    a, b = cluster.client("a"), cluster.client("b")
    page = a.get(link_path(create_link(owner, notes["id"])), headers=EMBEDDED)
    assert page.status_code == 200, page.text
    viewer = parse_html(page)
    renew_url = viewer.attr("[data-renew-url]", "data-renew-url")
    token = viewer.attr("[data-token]", "data-token")
    beacon_token = viewer.attr("[data-beacon-token]", "data-beacon-token")
    beacon = {"token": beacon_token, "type": "load_ok", "seq": 0, "t": int(cluster.a.clock.time() * 1000), "load_ms": 9}
    cluster.open_queued_views()
    assert b.post("/api/v1/events", json=beacon).status_code == 204

    renewed = a.post(renew_url, json={"token": token, "file_id": notes["id"]})
    assert renewed.status_code == 200, renewed.text
    media_url = renewed.json()["url"]
    advance(cluster, cluster.a.settings.media_url_ttl_seconds - 30)
    media = b.get(media_url)
    assert media.status_code == 200, media.text
    assert media.content == b"lecture notes"

    advance(cluster, VIEWER_TOKEN_SECONDS - cluster.a.settings.media_url_ttl_seconds)  # 30 s before the token ends
    again = b.post(renew_url, json={"token": token, "file_id": notes["id"]})
    assert again.status_code == 200, again.text
    assert re.match(r"/m/", again.json()["url"])


def test_an_lti_login_on_a_launches_on_b_until_its_state_ends(cluster: Cluster, simulator: Simulator) -> None:
    campus, balancer = campus_on(cluster)
    platform = simulator.platform("moodle")
    register(campus, platform)
    balancer.next("a")
    started = login(campus.lms, platform)
    advance(cluster, cluster.a.settings.lti_state_ttl_seconds - 30)
    token = signed_launch(platform, campus, started.nonce, at=cluster.a.clock.time())
    b: TestClient = instance_client(cluster, "b", campus)
    shown = b.post("/lti/launch", data={"id_token": token, "state": started.state})
    assert shown.status_code == 200, shown.text
    assert "notes.txt" in shown.text
