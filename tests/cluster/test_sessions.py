"""Sessions, sign-in throttling and the access cache hold when consecutive requests hit different instances."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from studyshelf.partners.deps import SESSION_COOKIE
from studyshelf.partners.models import Role
from tests.cluster.conftest import Balancer, Cluster
from tests.conftest import PASSWORD, World
from tests.library.support import assert_problem
from tests.sharing.support import grant, partnership

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def shared_store() -> str:
    return "db"  # sessions, sign-in failures and the access epoch live in the database only


def sign_in(browser: TestClient, email: str) -> dict[str, str]:
    answer = browser.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"X-CSRF-Token": answer.json()["csrf_token"]}


def test_a_session_made_on_one_instance_works_and_ends_on_the_other(cluster: Cluster) -> None:
    world = World(cluster.a)
    owner = world.member(world.org())
    browser, balancer = cluster.browser()
    headers = sign_in(browser, owner.email)  # served by A
    me = browser.get("/api/v1/me")  # B
    assert me.status_code == 200, me.text
    root = me.json()["organizations"][0]["root_folder_id"]
    made = browser.post("/api/v1/folders", json={"name": "Week 1", "parent_id": root}, headers=headers)  # A
    assert made.status_code == 201, made.text
    assert browser.get(f"/api/v1/folders/{root}/children").status_code == 200  # B
    assert [name for name, _ in balancer.served] == ["a", "b", "a", "b"]
    assert browser.post("/api/v1/auth/logout", headers=headers).status_code == 204  # A
    assert_problem(browser.get("/api/v1/me"), 401, "not-authenticated")  # B: the session ended for everyone


def test_sign_in_failures_count_across_instances(cluster: Cluster) -> None:
    world = World(cluster.a)
    owner = world.member(world.org())
    browser, balancer = cluster.browser(client=("198.51.100.7", 4000))
    limit = cluster.a.settings.login_max_failures
    answers = [browser.post(LOGIN, json={"email": owner.email, "password": "wrong password"}) for _ in range(limit + 2)]
    assert [a.status_code for a in answers] == [401] * limit + [429, 429]
    assert {name for name, _ in balancer.served} == {"a", "b"}
    assert int(answers[-1].headers["retry-after"]) >= 1


def _read(browser: TestClient, instance: str, balancer: Balancer, url: str) -> httpx.Response:
    balancer.next(instance)
    response: httpx.Response = browser.get(url)
    return response


def test_a_grant_revoked_on_one_instance_stops_reads_on_the_other_at_once(cluster: Cluster) -> None:
    world = World(cluster.a)
    p = partnership(world)
    granted = grant(p.publisher, p.course["id"], p.partner.id)
    assert granted.status_code == 201, granted.text
    browser, balancer = cluster.browser()
    sign_in(browser, p.student.email)
    url = p.notes["content_url"]
    for _ in range(3):  # decided once on B, then answered from B's access cache
        read = _read(browser, "b", balancer, url)
        assert read.status_code == 200, read.text
        assert read.content == b"lecture notes"
    revoked = p.publisher.client.delete(f"/api/v1/grants/{granted.json()['id']}", headers=p.publisher.headers())
    assert revoked.status_code == 204, revoked.text  # on A (the World's app is A's services)
    assert_problem(_read(browser, "b", balancer, url), 404, "not-found")


def test_a_session_ended_on_one_instance_stops_cached_reads_on_the_other(cluster: Cluster) -> None:
    world = World(cluster.a)
    owner = world.member(world.org(), Role.OWNER)
    browser, balancer = cluster.browser()
    headers = sign_in(browser, owner.email)
    up = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("a.txt", b"abc", "text/plain")},
        headers=owner.headers(),
    )
    assert up.status_code == 201, up.text
    url = up.json()["content_url"]
    assert _read(browser, "b", balancer, url).status_code == 200
    assert _read(browser, "b", balancer, url).status_code == 200  # from B's cache
    cookie = browser.cookies[SESSION_COOKIE]
    balancer.next("a")
    assert browser.post("/api/v1/auth/logout", headers=headers).status_code == 204
    browser.cookies.set(SESSION_COOKIE, cookie)  # a copy of the cookie kept after signing out
    assert_problem(_read(browser, "b", balancer, url), 401, "not-authenticated")
