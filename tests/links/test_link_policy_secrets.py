"""The link policy's webhook URL (it often carries the receiver's token) is shown whole to admins only."""

from __future__ import annotations

import pytest

from studyshelf.core.redact import mask_url, unless_masked
from studyshelf.partners.models import Role
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import assert_problem
from tests.links.support import viewer_token_client

HOOK = "https://hooks.example.com/services/T0001/B0002/s3cr3tT0ken?sig=abc123"
MASKED = "https://hooks.example.com/…"
HTMX = {"HX-Request": "true"}
POLICY_FORM = {
    "default_ttl_days": "90",
    "max_ttl_days": "365",
    "max_networks_per_hour": "30",
    "max_countries_per_hour": "5",
    "max_refusals_per_hour": "50",
    "default_origins": "https://moodle.example.edu",
}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("", ""),
        (HOOK, MASKED),
        ("https://Hooks.Example.com:8443", "https://hooks.example.com:8443/…"),
        ("http://127.0.0.1:9000/hook?token=x", "http://127.0.0.1:9000/…"),
        ("https://[2001:db8::1]/t/secret", "https://[2001:db8::1]/…"),
        ("https://user:pw@hooks.example.com/x", MASKED),
        ("not a url", "…"),
        ("https://hooks.example.com:99999/x", "…"),
    ],
)
def test_a_masked_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_masked_value_sent_back_keeps_the_stored_one() -> None:
    assert unless_masked(MASKED, HOOK) == HOOK
    assert unless_masked(" " + MASKED + " ", HOOK) == HOOK
    assert unless_masked("https://other.example.com/new", HOOK) == "https://other.example.com/new"
    assert unless_masked("", HOOK) == ""
    assert unless_masked(MASKED, "") == MASKED


def _policy_url(member: Member) -> str:
    return f"/api/v1/orgs/{member.org_id}/link-policy"


def _set_hook(admin: Member) -> None:
    response = admin.client.patch(_policy_url(admin), json={"notify_webhook_url": HOOK}, headers=admin.headers())
    assert response.status_code == 200, response.text
    assert response.json()["notify_webhook_url"] == HOOK


def test_only_admins_read_the_policy_webhook_whole_in_the_api(world: World) -> None:
    org = world.org("campus")
    admin = world.member(org, Role.ADMIN)
    _set_hook(admin)
    for role in (Role.VIEWER, Role.EDITOR):
        member = world.member(org, role)
        read = member.client.get(_policy_url(member))
        assert read.status_code == 200
        assert read.json()["notify_webhook_url"] == MASKED
        assert "s3cr3tT0ken" not in read.text
        refused = member.client.patch(_policy_url(member), json={"notify_webhook_url": ""}, headers=member.headers())
        assert_problem(refused, 403, "permission-denied")
    assert admin.client.get(_policy_url(admin)).json()["notify_webhook_url"] == HOOK
    owner = world.member(org, Role.OWNER)
    assert owner.client.get(_policy_url(owner)).json()["notify_webhook_url"] == HOOK
    client, headers = viewer_token_client(world, owner)
    assert client.get(_policy_url(owner), headers=headers).json()["notify_webhook_url"] == MASKED


def test_only_admins_see_the_policy_webhook_whole_on_the_settings_page(world: World) -> None:
    org = world.org("campus")
    admin = world.member(org, Role.ADMIN)
    viewer = world.member(org, Role.VIEWER)
    _set_hook(admin)
    shown = viewer.client.get("/settings/organization/link-policy", headers=HTMX)
    assert shown.status_code == 200
    assert "s3cr3tT0ken" not in shown.text
    assert parse_html(shown).attr('[name="notify_webhook_url"]', "value") == "https://hooks.example.com/…"
    page = viewer.client.get("/settings/organization/link-policy", headers={"Accept": "text/html"})
    assert "s3cr3tT0ken" not in page.text
    whole = parse_html(admin.client.get("/settings/organization/link-policy"))
    assert whole.attr('[name="notify_webhook_url"]', "value") == HOOK

    posted = viewer.client.post(
        "/settings/organization/link-policy",
        data={**POLICY_FORM, "notify_webhook_url": "https://attacker.example.net/x"},
        headers={**HTMX, **viewer.headers()},
    )
    assert posted.status_code == 403
    assert admin.client.get(_policy_url(admin)).json()["notify_webhook_url"] == HOOK


def test_a_masked_webhook_round_tripped_by_the_form_keeps_the_real_one(world: World) -> None:
    admin = world.member(world.org("campus"), Role.ADMIN)
    _set_hook(admin)
    saved = admin.client.post(
        "/settings/organization/link-policy",
        data={**POLICY_FORM, "notify_webhook_url": MASKED},
        headers={**HTMX, **admin.headers()},
    )
    assert saved.status_code == 200, saved.text
    policy = admin.client.get(_policy_url(admin)).json()
    assert (policy["notify_webhook_url"], policy["default_ttl_days"]) == (HOOK, 90)
    api = admin.client.patch(_policy_url(admin), json={"notify_webhook_url": MASKED}, headers=admin.headers())
    assert api.json()["notify_webhook_url"] == HOOK
