"""Pages for share links: the 'Get link' dialog, row actions, the Links page and the link policy settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery import radar
from studyshelf.delivery.models import Link
from studyshelf.partners.models import Role
from tests.conftest import Member, World
from tests.html import has_attr, parse_html
from tests.web.test_pages import HTML, HTMX, _folder, _upload

LMS = "https://moodle.example.edu"


def _htmx(member: Member) -> dict[str, str]:
    return {**HTMX, **member.headers()}


def _day(days: int) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


def _links(member: Member, target_id: str | None = None) -> list[dict[str, Any]]:
    query = f"?org_id={member.org_id}" + (f"&target_id={target_id}" if target_id else "")
    response = member.client.get("/api/v1/links" + query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def _create(member: Member, file_id: str, **form: str) -> str:
    """Create a link through the dialog's form; return the panel's HTML."""
    data = {"label": "BIO 101", "mode": "embed", "allowed_origins": LMS, "expires_on": _day(30), **form}
    response = member.client.post(f"/get-link/file/{file_id}", data=data, headers=_htmx(member))
    assert response.status_code == 200, response.text
    html: str = response.text
    return html


def test_the_dialog_is_offered_and_renders_with_the_policy_defaults(owner: Member) -> None:
    owner.client.patch(
        f"/api/v1/orgs/{owner.org_id}/link-policy", json={"default_origins": [LMS]}, headers=owner.headers()
    )
    folder_id = _folder(owner, "Biology")
    file_id = _upload(owner, folder_id, "notes.txt", b"cells\n")
    file_page = owner.client.get(f"/files/{file_id}", headers=HTML)
    assert parse_html(file_page).select_one(f'[data-load="/get-link/file/{file_id}"]')
    assert parse_html(file_page).select_one("dialog#link-dialog")
    folder_page = parse_html(owner.client.get(f"/library/{owner.root_folder_id}", headers=HTML))
    assert folder_page.select_one(f'[data-load="/get-link/folder/{folder_id}"]')
    assert folder_page.select_one('a[href="/links"]')  # the top bar's entry

    panel = owner.client.get(f"/get-link/file/{file_id}", headers=HTMX)
    assert panel.status_code == 200
    panel_html = parse_html(panel)
    assert not panel_html.is_full_document()
    assert panel_html.select_one("#link-panel")
    assert panel_html.one('textarea[name="allowed_origins"]').get_text() == LMS  # the default origins, prefilled
    assert panel_html.attr('input[name="expires_on"]', "value") == _day(120)  # the default lifetime
    assert panel_html.attr('input[name="expires_on"]', "max") == _day(400)
    assert "No links yet." in panel.text
    page = owner.client.get(f"/get-link/folder/{folder_id}", headers=HTML)  # without JavaScript: a page
    assert page.status_code == 200
    assert parse_html(page).is_full_document()
    assert "Create link" in page.text


def test_creating_a_link_shows_url_snippet_and_lms_instructions(owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    html = _create(owner, file_id, allowed_origins=" HTTPS://Moodle.Example.EDU:443 \n\nhttps://canvas.example.edu\n")
    [link] = _links(owner, file_id)
    assert link["allowed_origins"] == [LMS, "https://canvas.example.edu"]
    assert link["label"] == "BIO 101"
    assert link["expires_at"].startswith(_day(30))
    panel = parse_html(html)
    assert panel.attr("#new-link-url", "value") == link["url"]
    snippet = panel.one("textarea#new-link-snippet").get_text()
    assert snippet.startswith("<iframe")  # the snippet, escaped into the textarea (text, not an element)
    assert "height:720px" in snippet  # a document: fixed height
    assert "Moodle" in html
    assert "Source code" in html
    assert "Save and display" in html
    assert "Canvas" in html
    assert "Insert → Embed" in html
    assert "LTI" in html
    assert panel.by_role("button", "Copy embed code")[0]["data-copy"] == "#new-link-snippet"
    assert panel.select_one(f'li[id="link-{link["id"]}"]')  # listed below, with its actions


def test_a_direct_link_with_limits(owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    html = _create(owner, file_id, mode="direct", allowed_origins="", max_views="5", allow_download="true")
    [link] = _links(owner, file_id)
    assert (link["mode"], link["max_views"], link["allow_download"], link["allowed_origins"]) == ("direct", 5, True, [])
    assert parse_html(html).select_one("#new-link-snippet") is None
    assert "0 / 5" in html


def test_form_errors_are_shown_in_the_dialog(owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    html = _create(owner, file_id, allowed_origins=f"{LMS}/course/view.php?id=7", label="Keep me")
    panel = parse_html(html)
    assert panel.by_role("alert")[0]["class"] == ["alert", "alert-error"]
    assert "path" in html.lower()
    assert panel.attr('input[name="label"]', "value") == "Keep me"  # what was typed stays
    html = _create(owner, file_id, allowed_origins="")
    assert "at least one allowed origin" in html
    html = _create(owner, file_id, expires_on=_day(401))
    assert "at most 400 days" in html
    assert _links(owner, file_id) == []
    plain = owner.client.post(
        f"/get-link/file/{file_id}",
        data={"mode": "embed", "allowed_origins": "ftp://x", "expires_on": _day(3)},
        headers={**HTML, **owner.headers()},
    )
    assert plain.status_code == 422
    assert parse_html(plain).select_one(".alert-error")


def test_extend_change_origins_revoke_through_the_rows(owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    _create(owner, file_id)
    [link] = _links(owner, file_id)
    edited = owner.client.post(
        f"/links/{link['id']}/edit",
        data={"expires_on": _day(200), "allowed_origins": f"{LMS}\nhttps://Canvas.example.edu/", "back": "/links"},
        headers=_htmx(owner),
    )
    assert edited.status_code == 200, edited.text
    assert parse_html(edited).roots()[0].name == "li"
    assert "Link updated" in edited.headers["hx-trigger"]
    assert "Biology" not in edited.text
    assert "notes.txt" in edited.text
    [after] = _links(owner, file_id)
    assert after["expires_at"].startswith(_day(200))
    assert after["allowed_origins"] == [LMS, "https://canvas.example.edu"]
    too_long = owner.client.post(
        f"/links/{link['id']}/edit", data={"expires_on": _day(999), "allowed_origins": LMS}, headers=_htmx(owner)
    )
    assert too_long.status_code == 422  # htmx shows the problem's detail as a toast

    revoked = owner.client.post(f"/links/{link['id']}/revoke", data={"back": "/links"}, headers=_htmx(owner))
    assert revoked.status_code == 200
    revoked_row = parse_html(revoked)
    assert revoked_row.select_one(".status-revoked")
    assert not revoked_row.select('[action*="/revoke"], [hx-post*="/revoke"]')  # nothing left to do with it
    assert _links(owner, file_id)[0]["status"] == "revoked"
    plain = owner.client.post(
        f"/links/{link['id']}/revoke",
        data={"back": f"/get-link/file/{file_id}"},
        headers=owner.headers(),
        follow_redirects=False,
    )
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/get-link/file/{file_id}"


def _suspend(world: World, member: Member, link_id: str) -> None:
    """Let the link be seen from three networks within an hour, over a lowered threshold."""
    member.client.patch(
        f"/api/v1/orgs/{member.org_id}/link-policy", json={"max_networks_per_hour": 2}, headers=member.headers()
    )
    for n in range(3):
        with unit_of_work(world.services.write_sessions) as db:
            link = db.get(Link, link_id)
            assert link is not None
            visitor = radar.Visitor(ip=f"198.51.{n}.7", salt="s")
            radar.record_sighting(
                db, geo=world.services.geo, link=link, visitor=visitor, now=world.services.clock.now()
            )


def test_suspended_links_are_flagged_on_the_links_page_and_can_be_reenabled(world: World, owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    _create(owner, file_id, label="Leaky course")
    _create(owner, file_id, label="Quiet course")
    leaky = next(link for link in _links(owner) if link["label"] == "Leaky course")
    calm = owner.client.get("/links", headers=HTML)
    assert calm.status_code == 200
    assert "were paused" not in calm.text
    assert "was paused" not in calm.text
    assert parse_html(calm).select_one('a[href="/links"][aria-current="page"]')

    _suspend(world, owner, leaky["id"])
    page = owner.client.get("/links", headers=HTML)
    assert "1 link was paused" in page.text
    assert "spread beyond one course" in page.text
    assert parse_html(page).select_one('a[href="/links?status=suspended"]')
    assert "networks within an hour" in page.text  # the reason, on the row
    assert "notes.txt" in page.text
    only = owner.client.get("/links?status=suspended", headers=HTML)
    assert "Leaky course" in only.text
    assert "Quiet course" not in only.text
    assert parse_html(only).select_one(f'form[action="/links/{leaky["id"]}/reactivate"]')

    back = owner.client.post(f"/links/{leaky['id']}/reactivate", data={"back": "/links"}, headers=_htmx(owner))
    assert back.status_code == 200
    assert parse_html(back).select_one(".status-active")
    assert "The link works again" in back.headers["hx-trigger"]
    assert next(link for link in _links(owner) if link["id"] == leaky["id"])["status"] == "active"
    assert "was paused" not in owner.client.get("/links", headers=HTML).text


def test_links_page_is_per_organisation_and_empty_at_first(world: World, owner: Member) -> None:
    empty = owner.client.get("/links", headers=HTML)
    assert "No links yet" in empty.text
    other = world.member(world.org("riverside"), Role.OWNER)
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    _create(owner, file_id, label="Ours")
    assert "Ours" not in other.client.get("/links", headers=HTML).text
    assert (
        other.client.post(
            f"/get-link/file/{file_id}", data={"mode": "direct", "expires_on": _day(3)}, headers=_htmx(other)
        ).status_code
        == 404
    )


# --- The link policy on the organisation page --------------------------------------------------------------

POLICY = {
    "default_ttl_days": "90",
    "max_ttl_days": "365",
    "default_origins": "HTTPS://Moodle.example.edu\nhttps://school.instructure.com",
    "max_networks_per_hour": "40",
    "max_countries_per_hour": "3",
    "max_refusals_per_hour": "20",
    "notify_webhook_url": "",
}


def test_the_organisation_page_loads_the_link_policy_section(owner: Member) -> None:
    page = owner.client.get("/settings/organization", headers=HTML)
    assert parse_html(page).select_one('[hx-get="/settings/organization/link-policy"]')
    section = owner.client.get("/settings/organization/link-policy", headers=HTMX)
    assert section.status_code == 200
    fragment = parse_html(section)
    assert fragment.select_one("#link-policy")
    assert fragment.select_one('[hx-trigger="load"]') is None
    assert "Save link settings" in section.text
    assert fragment.select_one('[name="default_ttl_days"]')
    whole = owner.client.get("/settings/organization/link-policy", headers=HTML)  # without JavaScript
    assert "Members" in whole.text
    assert "Save link settings" in whole.text


def test_admins_save_the_link_policy(owner: Member) -> None:
    saved = owner.client.post("/settings/organization/link-policy", data=POLICY, headers=_htmx(owner))
    assert saved.status_code == 200, saved.text
    assert "Link settings saved" in saved.headers["hx-trigger"]
    policy = owner.client.get(f"/api/v1/orgs/{owner.org_id}/link-policy").json()
    assert policy["default_origins"] == [LMS, "https://school.instructure.com"]
    assert (policy["default_ttl_days"], policy["max_ttl_days"], policy["max_countries_per_hour"]) == (90, 365, 3)
    file_id = _upload(owner, owner.root_folder_id, "notes.txt", b"cells\n")
    panel = owner.client.get(f"/get-link/file/{file_id}", headers=HTMX)
    panel_html = parse_html(panel)
    assert panel_html.one('textarea[name="allowed_origins"]').get_text() == f"{LMS}\nhttps://school.instructure.com"
    assert panel_html.attr('input[name="expires_on"]', "value") == _day(90)


def test_policy_errors_are_shown_inline_and_nothing_is_saved(owner: Member) -> None:
    bad_origin = {**POLICY, "default_origins": f"{LMS}/course/view.php"}
    shown = owner.client.post("/settings/organization/link-policy", data=bad_origin, headers=_htmx(owner))
    assert shown.status_code == 200
    shown_html = parse_html(shown)
    assert shown_html.by_role("alert")[0]["class"] == ["alert", "alert-error"]
    typed = shown_html.one('textarea[name="default_origins"]').get_text()
    assert typed.endswith("/course/view.php")  # the admin's text stays to be fixed
    longer = {**POLICY, "default_ttl_days": "500", "max_ttl_days": "400"}
    shown = owner.client.post("/settings/organization/link-policy", data=longer, headers=_htmx(owner))
    assert "cannot be longer than the maximum" in shown.text
    webhook = {**POLICY, "notify_webhook_url": "http://hooks.example.edu/x"}
    assert (
        "https://" in owner.client.post("/settings/organization/link-policy", data=webhook, headers=_htmx(owner)).text
    )
    policy = owner.client.get(f"/api/v1/orgs/{owner.org_id}/link-policy").json()
    assert (policy["default_ttl_days"], policy["default_origins"], policy["notify_webhook_url"]) == (120, [], "")
    plain = owner.client.post(
        "/settings/organization/link-policy", data=bad_origin, headers={**HTML, **owner.headers()}
    )
    assert plain.status_code == 422
    assert "Members" in plain.text
    assert parse_html(plain).select_one(".alert-error")


def test_others_read_the_link_policy_but_cannot_change_it(world: World) -> None:
    viewer = world.member(world.org(), Role.EDITOR)
    section = viewer.client.get("/settings/organization/link-policy", headers=HTMX)
    assert section.status_code == 200
    assert "Only admins and owners" in section.text
    assert has_attr(parse_html(section).one("fieldset.policy-fields"), "disabled")
    assert "Save link settings" not in section.text
    refused = viewer.client.post("/settings/organization/link-policy", data=POLICY, headers=_htmx(viewer))
    assert refused.status_code == 403
