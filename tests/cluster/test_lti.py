"""An LTI login on one instance and its launch on the other; a nonce is spent once for the whole cluster."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from studyshelf.core.db import unit_of_work
from studyshelf.lti.models import Launch, UsedNonce
from studyshelf.partners.models import OrgKind, Role
from tests.cluster.conftest import Balancer, Cluster
from tests.conftest import World
from tests.library.support import make_folder, uploaded
from tests.lti.conftest import Campus, launch, login, register, simulator, target_of
from tests.lti.platform import CLAIM, Platform, Simulator
from tests.sharing.support import grant

__all__ = ["simulator"]  # the LTI suite's platform simulator, one per session


@pytest.fixture
def shared_store() -> str:
    return "db"  # LTI state is a signed token; spent nonces live in the database


def campus_on(cluster: Cluster) -> tuple[Campus, Balancer]:
    world = World(cluster.a)
    publisher = world.member(world.org("publisher", OrgKind.OPERATOR), Role.OWNER)
    university = world.org("university", OrgKind.PARTNER)
    admin = world.member(university, Role.ADMIN)
    course = make_folder(publisher, publisher.root_folder_id, "Biology")
    notes = uploaded(publisher, course["id"], "notes.txt", b"lecture notes")
    granted = grant(publisher, course["id"], university.id)
    assert granted.status_code == 201, granted.text
    browser, balancer = cluster.browser()
    return Campus(publisher, admin, university, course, notes, granted.json()["id"], browser), balancer


def instance_client(cluster: Cluster, instance: str, campus: Campus) -> TestClient:
    """A client of one instance with the LMS frame's cookies (the login's browser binding)."""
    client = cluster.client(instance)
    client.cookies = campus.lms.cookies
    return client


def signed_launch(platform: Platform, campus: Campus, nonce: str, *, at: float) -> str:
    claims = platform.claims(nonce=nonce, extra={CLAIM + "custom": target_of(campus.notes)})
    claims["iat"], claims["exp"] = int(at), int(at) + 3600  # the LMS's clock agrees with A's
    return platform.sign(claims)


def launches(cluster: Cluster) -> tuple[int, int]:
    with unit_of_work(cluster.a.read_sessions) as db:
        return (
            db.scalar(select(func.count()).select_from(Launch)) or 0,
            db.scalar(select(func.count()).select_from(UsedNonce)) or 0,
        )


def test_login_on_one_instance_launch_on_the_other_and_no_replay_anywhere(
    cluster: Cluster, simulator: Simulator
) -> None:
    campus, balancer = campus_on(cluster)
    platform = simulator.platform("moodle")
    register(campus, platform)
    balancer.next("a")
    started = login(campus.lms, platform)
    token = signed_launch(platform, campus, started.nonce, at=cluster.a.clock.time())
    shown = launch(campus.lms, platform, token, started.state)
    assert shown.status_code == 200, shown.text
    assert [name for name, path in balancer.served if path.startswith("/lti/")][:3] == ["a", "b", "a"]
    assert "notes.txt" in shown.text
    for instance in ("a", "b"):  # the same id_token and state again, on each instance
        replay = instance_client(cluster, instance, campus).post(
            "/lti/launch", data={"id_token": token, "state": started.state}
        )
        assert replay.status_code == 401, replay.text
        assert "replayed nonce" in replay.text
    assert launches(cluster) == (1, 1)


def test_the_same_launch_on_both_instances_at_once_is_accepted_once(cluster: Cluster, simulator: Simulator) -> None:
    campus, _ = campus_on(cluster)
    platform = simulator.platform("canvas")
    register(campus, platform)
    started = login(campus.lms, platform, storage_target=True)
    token = signed_launch(platform, campus, started.nonce, at=cluster.a.clock.time())

    def post(instance: str) -> httpx.Response:
        client = instance_client(cluster, instance, campus)
        return client.post("/lti/launch", data={"id_token": token, "state": started.state})

    cluster.warm_up("POST", "/lti/launch")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post, ["a", "b"]))
    assert sorted(a.status_code for a in answers) == [200, 401]  # one viewer, one refusal
    assert launches(cluster) == (1, 1)
