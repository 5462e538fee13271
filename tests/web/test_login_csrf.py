"""Issue 13.7: sign-in and sign-up forms posted from another site are refused (login CSRF)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.types import Scope

from studyshelf.web.security import is_cross_site
from tests.conftest import PASSWORD, Member, World
from tests.html import parse_html
from tests.library.support import assert_problem
from tests.web.test_partner_pages import _invite

BASE = "http://127.0.0.1:8000"  # the default base URL the test settings keep
HTML = {"Accept": "text/html,application/xhtml+xml"}
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://files.127.0.0.1.test"},
    {"Origin": "https://evil.test"},  # a browser without Fetch Metadata
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Referer": "https://evil.test/attack.html"},
    {"Origin": "http://127.0.0.1:8001"},  # another port is another origin
]
SAME_ORIGIN = [
    {"Sec-Fetch-Site": "same-origin", "Origin": BASE},
    {"Sec-Fetch-Site": "none"},  # typed or bookmarked
    {"Origin": BASE},
    {"Origin": "HTTP://127.0.0.1:8000"},
    {"Referer": f"{BASE}/login?next=/"},
    {},  # no browser at all: curl, scripts
]


def scope(headers: dict[str, str]) -> Scope:
    return {"type": "http", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_requests_are_recognised(headers: dict[str, str]) -> None:
    assert is_cross_site(scope(headers), base_url=BASE)


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_same_origin_requests_pass(headers: dict[str, str]) -> None:
    assert not is_cross_site(scope(headers), base_url=BASE)


def test_default_ports_are_the_same_origin() -> None:
    assert not is_cross_site(scope({"Origin": "https://shelf.example"}), base_url="https://shelf.example:443/")
    assert is_cross_site(scope({"Origin": "http://shelf.example"}), base_url="https://shelf.example")


@pytest.mark.parametrize("headers", CROSS_SITE[:1] + CROSS_SITE[2:3])
def test_a_cross_site_sign_in_form_is_refused(world: World, owner: Member, headers: dict[str, str]) -> None:
    client = TestClient(world.app)
    response = client.post(
        "/login", data={"email": owner.email, "password": PASSWORD, "next": "/"}, headers={**HTML, **headers}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This form came from another site" in response.text
    assert parse_html(response).select_one(f'a[href="{BASE}/login"]')
    assert "studyshelf_session" not in response.cookies
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("headers", SAME_ORIGIN[:1] + SAME_ORIGIN[2:3])
def test_a_same_origin_sign_in_form_works(world: World, owner: Member, headers: dict[str, str]) -> None:
    client = TestClient(world.app)
    response = client.post(
        "/login",
        data={"email": owner.email, "password": PASSWORD, "next": "/"},
        headers={**HTML, **headers},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "studyshelf_session" in response.cookies


def test_a_cross_site_invitation_acceptance_is_refused(world: World, owner: Member) -> None:
    link = _invite(owner, "newcomer@northwind.test")
    guest = TestClient(world.app)
    form = {"name": "New Comer", "password": "a long enough password"}
    forged = guest.post(link, data=form, headers={**HTML, **CROSS_SITE[0]}, follow_redirects=False)
    assert forged.status_code == 403
    assert "This form came from another site" in forged.text
    assert "studyshelf_session" not in forged.cookies
    assert "Create your account" in guest.get(link, headers=HTML).text  # still unused

    accepted = guest.post(link, data=form, headers={**HTML, **SAME_ORIGIN[0]}, follow_redirects=False)
    assert accepted.status_code == 303
    assert "studyshelf_session" in accepted.cookies


def test_the_json_sign_in_refuses_cross_site_and_non_json_bodies(world: World, owner: Member) -> None:
    client = TestClient(world.app)
    credentials = {"email": owner.email, "password": PASSWORD}
    forged = client.post("/api/v1/auth/login", json=credentials, headers=CROSS_SITE[0])
    assert_problem(forged, 403, "csrf-failed")
    assert "set-cookie" not in forged.headers
    # What a cross-site HTML form or a no-cors fetch can send without a preflight is not taken as JSON.
    body = f'{{"email": "{owner.email}", "password": "{PASSWORD}"}}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post("/api/v1/auth/login", content=body, headers=headers)
        assert response.status_code == 422, (content_type, response.text)
        assert "set-cookie" not in response.headers
    assert client.post("/api/v1/auth/login", json=credentials, headers=SAME_ORIGIN[0]).status_code == 200
