"""The partner admins' LMS page: what to paste into Moodle and Canvas, and adding a platform by hand."""

from __future__ import annotations

from studyshelf.partners.models import Role
from tests.conftest import World
from tests.html import parse_html
from tests.lti.conftest import Campus
from tests.lti.platform import Simulator


def test_admin_page_shows_values_and_adds_a_platform(campus: Campus, simulator: Simulator) -> None:
    assert parse_html(campus.admin.client.get("/settings/organization")).select_one('a[href="/settings/lms"]')
    page = campus.admin.client.get("/settings/lms")
    assert page.status_code == 200
    for value in (
        "http://testserver/lti/login",
        "http://testserver/lti/jwks",
        "oidc_initiation_url",
        "Create a registration URL",
    ):
        assert value in page.text
    platform = simulator.platform("moodle")
    form = {**platform.registration_spec(), "deployment_ids": "1\n2", "csrf_token": campus.admin.csrf}
    added = campus.admin.client.post("/settings/lms", data=form, follow_redirects=False)
    assert added.status_code == 303
    listed = campus.admin.client.get("/settings/lms").text
    assert platform.client_id in listed
    duplicate = campus.admin.client.post("/settings/lms", data=form)
    assert duplicate.status_code == 409
    assert "already registered" in duplicate.text


def test_admin_page_is_for_admins(campus: Campus, world: World) -> None:
    viewer = world.member(campus.university, Role.VIEWER)
    assert viewer.client.get("/settings/lms").status_code == 403


def test_the_account_menu_links_admins_to_lms_connections(campus: Campus, world: World) -> None:
    menu_link = 'a.menu-item[href="/settings/lms"]'
    assert parse_html(campus.admin.client.get("/")).select_one(menu_link)
    viewer = world.member(campus.university, Role.VIEWER)
    home = viewer.client.get("/")
    assert home.status_code == 200
    assert parse_html(home).select_one(menu_link) is None
