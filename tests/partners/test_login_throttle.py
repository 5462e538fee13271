"""Issue 13.9: sign-in throttling per (account, client network) with back-off, and a per-account ceiling.

Nobody can lock an account out for everyone by failing to sign in to it. Time comes from the services'
clock, a MovableClock that the tests move: no test sleeps.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock, utcnow
from studyshelf.jobs.runner import JOBS
from studyshelf.partners.jobs import prune_login_failures
from studyshelf.partners.models import LoginFailure
from studyshelf.partners.throttle import client_network
from studyshelf.services import Services
from tests.conftest import PASSWORD, World
from tests.html import parse_html
from tests.library.support import assert_problem

LOGIN = "/api/v1/auth/login"
WRONG = "not the password"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(utcnow().replace(microsecond=0))


class Site:
    """The app on a movable clock with some sign-in settings changed, and clients at chosen addresses."""

    def __init__(self, services: Services, clock: MovableClock, **settings: Any) -> None:
        changed = services.settings.model_copy(update=settings)
        self.services = dataclasses.replace(services, settings=changed, clock=clock)
        self.app = create_app(services=self.services)

    def client(self, address: str) -> TestClient:
        return TestClient(self.app, client=(address, 4000))

    def login(self, address: str, email: str, password: str) -> httpx.Response:
        return self.client(address).post(LOGIN, json={"email": email, "password": password})


def retry_after(response: httpx.Response) -> int:
    assert_problem(response, 429, "too-many-requests")
    seconds = int(response.headers["retry-after"])
    assert response.json()["retry_after"] == seconds
    return seconds


@pytest.mark.parametrize(
    ("client", "network"),
    [
        ("198.51.100.7", "198.51.100.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),
        ("testclient", "testclient"),
    ],
)
def test_client_networks(client: str, network: str) -> None:
    assert client_network(client) == network


def test_an_attackers_failures_do_not_lock_the_owner_out(world: World, services: Services, clock: MovableClock) -> None:
    site = Site(services, clock)
    owner = world.member(world.org())
    answers = [site.login("198.51.100.7", owner.email, WRONG).status_code for _ in range(30)]
    assert answers[:5] == [401] * 5
    assert set(answers[5:]) == {429}  # the attacker's network backs off; its refused tries are not guesses
    # The owner, at home, signs in at once.
    assert site.login("203.0.113.9", owner.email, PASSWORD).status_code == 200
    # A neighbour of the attacker (same /24) waits too; so does the attacker's IPv6 /64.
    assert retry_after(site.login("198.51.100.200", owner.email, PASSWORD)) == 1
    for _ in range(5):
        assert site.login("2001:db8:1:2::1", owner.email, WRONG).status_code == 401
    assert retry_after(site.login("2001:db8:1:2::ffff", owner.email, PASSWORD)) == 1
    assert site.login("2001:db8:1:3::1", owner.email, PASSWORD).status_code == 200


def test_the_back_off_doubles_is_capped_and_resets_after_a_success(
    world: World, services: Services, clock: MovableClock
) -> None:
    site = Site(services, clock, login_window_seconds=86400, login_backoff_max_seconds=60)
    owner = world.member(world.org())
    for _ in range(5):
        assert site.login("198.51.100.7", owner.email, WRONG).status_code == 401
    waits = []
    for _ in range(8):
        wait = retry_after(site.login("198.51.100.7", owner.email, WRONG))
        waits.append(wait)
        clock.advance(wait - 1)
        assert retry_after(site.login("198.51.100.7", owner.email, PASSWORD)) == 1  # not a second early
        clock.advance(1)
        assert site.login("198.51.100.7", owner.email, WRONG).status_code == 401
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]

    clock.advance(60)
    assert site.login("198.51.100.7", owner.email, PASSWORD).status_code == 200
    # The success cleared this network's back-off for the account: four more mistakes pass unhindered.
    for _ in range(4):
        assert site.login("198.51.100.7", owner.email, WRONG).status_code == 401


def test_the_per_account_ceiling_holds_across_networks(world: World, services: Services, clock: MovableClock) -> None:
    site = Site(services, clock, login_account_max_failures=12)
    owner = world.member(world.org())
    for network in range(6):  # below the per-network threshold everywhere
        for _ in range(2):
            clock.advance(10)
            assert site.login(f"198.51.{network}.7", owner.email, WRONG).status_code == 401
    refused = site.login("203.0.113.9", owner.email, PASSWORD)
    # The oldest failure leaves the 900 s window first: 120 s have passed since it.
    assert retry_after(refused) == 900 - 110
    assert "studyshelf_session" not in refused.cookies
    clock.advance(900 - 111)
    assert retry_after(site.login("203.0.113.9", owner.email, PASSWORD)) == 1
    clock.advance(1)
    assert site.login("203.0.113.9", owner.email, PASSWORD).status_code == 200


def test_a_throttled_answer_does_not_tell_whether_the_account_exists(
    world: World, services: Services, clock: MovableClock
) -> None:
    site = Site(services, clock)
    owner = world.member(world.org())
    answers = []
    for email in (owner.email, "nobody@northwind.test"):
        for _ in range(5):
            assert site.login("198.51.100.7", email, WRONG).status_code == 401
        refused = site.login("198.51.100.7", email, WRONG)
        body = refused.json()
        answers.append((refused.status_code, refused.headers["retry-after"], body["detail"], body["type"]))
    assert answers[0] == answers[1]


def test_the_sign_in_page_says_when_to_try_again(world: World, services: Services, clock: MovableClock) -> None:
    site = Site(services, clock)
    owner = world.member(world.org())
    browser = site.client("198.51.100.7")
    form = {"email": owner.email, "password": WRONG, "next": "/"}
    for _ in range(5):
        assert browser.post("/login", data=form, headers=HTML).status_code == 401
    page = browser.post("/login", data={**form, "password": PASSWORD}, headers=HTML)
    assert page.status_code == 429
    assert page.headers["retry-after"] == "1"
    assert "Too many failed sign-ins. Try again in 1 second." in page.text
    [login_form] = parse_html(page).forms('form[action="/login"]')  # the form again, with the address kept
    assert login_form["email"] == owner.email


def test_old_failures_are_pruned(world: World, services: Services, clock: MovableClock) -> None:
    site = Site(services, clock)
    owner = world.member(world.org())
    assert site.login("198.51.100.7", owner.email, WRONG).status_code == 401
    clock.advance(services.settings.login_window_seconds - 1)
    assert site.login("198.51.100.7", owner.email, WRONG).status_code == 401
    clock.advance(2)
    assert prune_login_failures(site.services, "") == "removed 3 old sign-in failures"
    with services.read_sessions() as db:
        assert db.scalar(select(func.count()).select_from(LoginFailure)) == 3
    assert "partners.login_failures" in {job.name for job in JOBS}


def test_parallel_guesses_cannot_all_pass_the_check(world: World, services: Services, clock: MovableClock) -> None:
    site = Site(services, clock, login_max_failures=3)
    owner = world.member(world.org())
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: site.login("198.51.100.7", owner.email, WRONG).status_code, range(8)))
    assert sorted(answers) == [401] * 3 + [429] * 5
