"""The report webhook URL (it often carries the receiver's token) is shown whole to admins only."""

from __future__ import annotations

from studyshelf.partners.models import Role
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import assert_problem
from tests.links.support import viewer_token_client

HOOK = "https://hooks.example.com/reports/T0001/s3cr3tT0ken?sig=abc123"
MASKED = "https://hooks.example.com/…"
PAGE = "/analytics/reports"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _url(member: Member) -> str:
    return f"/api/v1/orgs/{member.org_id}/report-settings"


def _save(admin: Member, webhook_url: str, time_zone: str = "Europe/Berlin") -> dict[str, object]:
    body = {"time_zone": time_zone, "emails": ["dean@example.edu"], "webhook_url": webhook_url}
    response = admin.client.put(_url(admin), json=body, headers=admin.headers())
    assert response.status_code == 200, response.text
    saved: dict[str, object] = response.json()
    return saved


def test_only_admins_read_the_report_webhook_whole_in_the_api(world: World) -> None:
    org = world.org("college")
    admin = world.member(org, Role.ADMIN)
    assert _save(admin, HOOK)["webhook_url"] == HOOK
    for role in (Role.VIEWER, Role.EDITOR):
        member = world.member(org, role)
        read = member.client.get(_url(member))
        assert read.status_code == 200
        assert (read.json()["webhook_url"], read.json()["can_edit"]) == (MASKED, False)
        assert "s3cr3tT0ken" not in read.text
        body = {"time_zone": "UTC", "webhook_url": "https://attacker.example.net/x"}
        assert_problem(member.client.put(_url(member), json=body, headers=member.headers()), 403, "permission-denied")
    assert admin.client.get(_url(admin)).json()["webhook_url"] == HOOK
    owner = world.member(org, Role.OWNER)
    assert owner.client.get(_url(owner)).json()["webhook_url"] == HOOK
    client, headers = viewer_token_client(world, owner)
    assert client.get(_url(owner), headers=headers).json()["webhook_url"] == MASKED


def test_only_admins_see_the_report_webhook_whole_on_the_reports_page(world: World) -> None:
    org = world.org("college")
    admin = world.member(org, Role.ADMIN)
    viewer = world.member(org, Role.VIEWER)
    _save(admin, HOOK)
    page = viewer.client.get(PAGE, headers=HTML)
    assert page.status_code == 200
    assert "s3cr3tT0ken" not in page.text
    assert parse_html(page).attr('input[name="webhook_url"]', "value") == MASKED
    assert parse_html(admin.client.get(PAGE, headers=HTML)).attr('input[name="webhook_url"]', "value") == HOOK
    form = {"csrf_token": viewer.csrf, "time_zone": "UTC", "webhook_url": MASKED}
    assert viewer.client.post(f"{PAGE}/settings", data=form, headers=HTML).status_code == 403
    assert admin.client.get(_url(admin)).json()["time_zone"] == "Europe/Berlin"


def test_a_masked_report_webhook_sent_back_keeps_the_real_one(world: World) -> None:
    admin = world.member(world.org("college"), Role.ADMIN)
    _save(admin, HOOK)
    form = {"csrf_token": admin.csrf, "time_zone": "Asia/Tokyo", "emails": "dean@example.edu", "webhook_url": MASKED}
    saved = admin.client.post(f"{PAGE}/settings", data=form, headers=HTML, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    read = admin.client.get(_url(admin)).json()
    assert (read["time_zone"], read["webhook_url"]) == ("Asia/Tokyo", HOOK)
    assert _save(admin, MASKED, time_zone="UTC")["webhook_url"] == HOOK
