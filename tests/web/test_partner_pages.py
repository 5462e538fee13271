"""Pages for organisations: settings, members, invitations, sharing with partners, 'Shared with us', audit log."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import Invitation, Organization, OrgKind, Role
from tests.conftest import Member, World
from tests.html import parse_html, text_of
from tests.web.inline_scripts import assert_no_inline_script_but_the_import_map
from tests.web.test_pages import HTML, HTMX, _csrf, _folder, _upload


def _htmx(member: Member) -> dict[str, str]:
    return {**HTMX, **member.headers()}


def _invite(member: Member, email: str, role: str = "viewer") -> str:
    """Invite through the settings page; return the path of the single-use link it shows."""
    response = member.client.post(
        "/settings/organization/invitations", data={"email": email, "role": role}, headers=_htmx(member)
    )
    assert response.status_code == 200, response.text
    assert "toast" in response.headers["hx-trigger"]
    url = urlsplit(parse_html(response).attr("input#invitation-link", "value"))
    assert url.scheme in {"http", "https"}, response.text
    assert url.path.startswith("/invitations/"), response.text
    return url._replace(scheme="", netloc="").geturl()


def _grant(owner: Member, target_id: str, grantee: Organization, level: str = "view", kind: str = "folder") -> str:
    body = {"target_type": kind, "target_id": target_id, "grantee_org_id": str(grantee.id), "level": level}
    response = owner.client.post("/api/v1/grants", json=body, headers=owner.headers())
    assert response.status_code == 201, response.text
    grant_id: str = response.json()["id"]
    return grant_id


# --- Organisation settings ----------------------------------------------------------------------------------


def test_org_settings_for_owner_and_read_only_for_viewer(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    page = owner.client.get("/settings/organization", headers=HTML)
    assert page.status_code == 200
    assert "Northwind" in page.text
    assert viewer.email in page.text
    assert "Invite someone" in page.text
    assert parse_html(page).select_one('[name="role"]')
    assert "The last owner" in page.text  # the only owner's controls are disabled, with the reason
    assert parse_html(page).select_one('a[href="/settings/audit"]')
    read_only = viewer.client.get("/settings/organization", headers=HTML)
    assert read_only.status_code == 200
    assert owner.email in read_only.text
    assert "Invite someone" not in read_only.text
    assert parse_html(read_only).select('[action$="/role"], [hx-post$="/role"]') == []
    assert "Only admins and owners" in read_only.text
    assert parse_html(read_only).select_one('a[href="/settings/audit"]') is None


def test_admin_cannot_touch_an_owner(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    admin = world.member(org, Role.ADMIN)
    page = admin.client.get("/settings/organization", headers=HTML)
    role_path = f"/settings/organization/members/{owner.user_id}/role"
    assert parse_html(page).select(f'[action="{role_path}"], [hx-post="{role_path}"]') == []
    assert parse_html(page).select_one('[value="owner"]') is None  # admins give roles up to admin
    refused = admin.client.post(
        f"/settings/organization/members/{owner.user_id}/role", data={"role": "viewer"}, headers=_htmx(admin)
    )
    assert refused.status_code == 403


def test_change_role_and_remove_member(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    changed = owner.client.post(
        f"/settings/organization/members/{viewer.user_id}/role", data={"role": "editor"}, headers=_htmx(owner)
    )
    assert changed.status_code == 200, changed.text
    assert parse_html(changed).select_one("#members")
    assert not parse_html(changed).is_full_document()
    assert "is now editor" in changed.headers["hx-trigger"]
    assert viewer.client.get("/api/v1/me").json()["organizations"][0]["role"] == "editor"
    last = owner.client.post(
        f"/settings/organization/members/{owner.user_id}/role", data={"role": "admin"}, headers=_htmx(owner)
    )
    assert last.status_code == 409
    removed = owner.client.post(f"/settings/organization/members/{viewer.user_id}/remove", headers=_htmx(owner))
    assert removed.status_code == 200
    assert viewer.email not in removed.text
    assert viewer.client.get(f"/library/{owner.root_folder_id}", headers=HTML).status_code == 404


# --- Invitations --------------------------------------------------------------------------------------------


def test_invite_then_accept_with_a_new_account(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    link = _invite(owner, "new.person@example.edu", role="editor")
    listing = owner.client.get("/settings/organization", headers=HTML)
    assert "new.person@example.edu" in listing.text
    assert link not in listing.text  # the link is shown once

    guest = TestClient(world.app, base_url="http://testserver")
    page = guest.get(link, headers=HTML)
    assert page.status_code == 200
    assert "Join Northwind" in page.text
    assert "Create account and join" in page.text
    short = guest.post(link, data={"name": "New Person", "password": "short"}, headers=HTML)
    assert short.status_code == 422
    assert "at least 8" in short.text
    joined = guest.post(link, data={"name": "New Person", "password": "a good long password"}, follow_redirects=False)
    assert joined.status_code == 303
    home = guest.get("/", headers=HTML, follow_redirects=False)
    assert home.headers["location"] == f"/library/{owner.root_folder_id}"
    me = guest.get("/api/v1/me").json()
    assert me["organizations"][0]["role"] == "editor"

    used = TestClient(world.app, base_url="http://testserver").get(link, headers=HTML)
    assert used.status_code == 410
    assert "used already" in used.text


def test_invite_an_existing_user(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    partner = world.org("uni", OrgKind.PARTNER)
    someone = world.member(partner, Role.VIEWER)
    stranger = world.member(partner, Role.VIEWER)
    link = _invite(owner, someone.email, role="viewer")

    anonymous = TestClient(world.app, base_url="http://testserver").get(link, headers=HTML)
    assert anonymous.status_code == 200
    assert parse_html(anonymous).select_one(f'a[href="/login?next={link}"]')

    other = stranger.client.get(link, headers=HTML)
    assert other.status_code == 200
    notice = parse_html(other).one('span:-soup-contains-own("this invitation is for")')
    assert text_of(notice.select("strong")[-1]) == someone.email
    assert parse_html(other).select_one('form[action$="/join"]') is None

    page = someone.client.get(link, headers=HTML)
    assert page.status_code == 200
    assert "Join Northwind" in page.text
    joined = someone.client.post(f"{link}/join", data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert joined.status_code == 303
    home = someone.client.get("/", headers=HTML, follow_redirects=False)
    assert home.headers["location"] == f"/library/{owner.root_folder_id}"
    forged = stranger.client.post(f"{link}/join", data={"csrf_token": "nope"}, headers=HTML)
    assert forged.status_code == 403


def test_dead_invitation_links_explain_why(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    guest = TestClient(world.app, base_url="http://testserver")
    forged = guest.get("/invitations/not-a-real-secret-at-all", headers=HTML)
    assert forged.status_code == 404
    assert "not valid" in forged.text

    expired_link = _invite(owner, "late@example.edu")
    with unit_of_work(world.services.write_sessions) as db:
        for invitation in db.scalars(select(Invitation).where(Invitation.org_id == org.id)):
            invitation.expires_at = utcnow() - timedelta(minutes=1)
    expired = guest.get(expired_link, headers=HTML)
    assert expired.status_code == 410
    assert "expired" in expired.text

    withdrawn_link = _invite(owner, "withdrawn@example.edu")
    page = owner.client.get("/settings/organization", headers=HTML)
    revoke = parse_html(page).attr('form[action^="/settings/organization/invitations/"][action$="/revoke"]', "action")
    revoked = owner.client.post(revoke, headers=_htmx(owner))
    assert revoked.status_code == 200
    assert "withdrawn@example.edu" not in revoked.text
    withdrawn = guest.get(withdrawn_link, headers=HTML)
    assert withdrawn.status_code == 410
    assert "withdrawn" in withdrawn.text
    refused = guest.post(withdrawn_link, data={"password": "long enough password"}, headers=HTML)
    assert refused.status_code == 410


# --- Sharing with partners and 'Shared with us' --------------------------------------------------------------


def test_share_dialog_grants_and_revokes_what_the_partner_sees(world: World) -> None:
    operator = world.org()
    owner = world.member(operator, Role.OWNER)
    uni = world.org("uni", OrgKind.PARTNER)
    student = world.member(uni, Role.VIEWER)
    folder_id = _folder(owner, "Course pack")
    _upload(owner, folder_id, "reading.txt", b"chapter one\n")

    folder_page = owner.client.get(f"/library/{owner.root_folder_id}", headers=HTML)
    assert parse_html(folder_page).select_one(f'[data-load="/share/folder/{folder_id}"]')
    assert parse_html(folder_page).select_one("#share-dialog")
    panel = owner.client.get(f"/share/folder/{folder_id}", headers=HTMX)
    assert panel.status_code == 200
    panel_html = parse_html(panel)
    assert not panel_html.is_full_document()
    assert "Not shared with any organisation yet" in panel.text
    assert text_of(panel_html.one(f'option[value="{uni.id}"]')) == "Uni"
    assert panel_html.select_one(f'option[value="{operator.id}"]') is None  # never with itself

    assert "Nothing has been shared" in student.client.get("/shared", headers=HTML).text
    assert student.client.get(f"/library/{folder_id}", headers=HTML).status_code == 404
    expiry = (utcnow() + timedelta(days=30)).date().isoformat()
    shared = owner.client.post(
        f"/share/folder/{folder_id}",
        data={"grantee_org_id": str(uni.id), "level": "view", "expires_on": expiry},
        headers=_htmx(owner),
    )
    assert shared.status_code == 200, shared.text
    assert "Shared with Uni (view)" in shared.headers["hx-trigger"]
    assert "Uni" in shared.text
    assert "Revoke" in shared.text

    listing = student.client.get("/shared", headers=HTML)
    assert "Course pack" in listing.text
    assert parse_html(listing).select_one(f'a[href="/library/{folder_id}"]')
    assert "Northwind" in listing.text
    browsed = student.client.get(f"/library/{folder_id}", headers=HTML)
    assert browsed.status_code == 200
    assert "reading.txt" in browsed.text
    browsed_html = parse_html(browsed)
    assert browsed_html.select_one(f'[href="/library/{owner.root_folder_id}"]') is None  # crumbs start at the share
    assert "New folder" not in browsed.text
    assert browsed_html.select_one("[data-dropzone]") is None
    assert "Share with partners" not in browsed.text

    grant_id = parse_html(shared).attr('input[name="grant_id"]', "value")
    revoked = owner.client.post(f"/share/folder/{folder_id}/revoke", data={"grant_id": grant_id}, headers=_htmx(owner))
    assert revoked.status_code == 200
    assert "no longer has access" in revoked.headers["hx-trigger"]
    assert "Course pack" not in student.client.get("/shared", headers=HTML).text
    assert student.client.get(f"/library/{folder_id}", headers=HTML).status_code == 404


def test_manage_grant_gives_partner_editors_write_controls(world: World) -> None:
    operator = world.org()
    owner = world.member(operator, Role.OWNER)
    uni = world.org("uni", OrgKind.PARTNER)
    editor = world.member(uni, Role.EDITOR)
    viewer = world.member(uni, Role.VIEWER)
    folder_id = _folder(owner, "Joint course")
    _grant(owner, folder_id, uni, level="manage")
    assert "New folder" in editor.client.get(f"/library/{folder_id}", headers=HTML).text
    assert "New folder" not in viewer.client.get(f"/library/{folder_id}", headers=HTML).text
    created = editor.client.post(f"/library/{folder_id}/folders", data={"name": "Week 2"}, headers=_htmx(editor))
    assert created.status_code == 200, created.text
    assert "Week 2" in created.text


def test_file_shared_alone_opens_for_the_partner(world: World) -> None:
    owner = world.member(world.org(), Role.OWNER)
    uni = world.org("uni", OrgKind.PARTNER)
    student = world.member(uni, Role.VIEWER)
    folder_id = _folder(owner, "Private")
    file_id = _upload(owner, folder_id, "handout.txt", b"one page\n")
    _grant(owner, file_id, uni, kind="file")
    listing = student.client.get("/shared", headers=HTML)
    assert parse_html(listing).select_one(f'a[href="/files/{file_id}"]')
    page = student.client.get(f"/files/{file_id}", headers=HTML)
    assert page.status_code == 200
    assert "handout.txt" in page.text
    assert f"/library/{folder_id}" not in page.text
    assert "Share with partners" not in page.text
    owner_page = owner.client.get(f"/files/{file_id}", headers=HTML)
    assert parse_html(owner_page).select_one(f'[data-load="/share/file/{file_id}"]')


def test_only_sharers_see_the_share_dialog(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    editor = world.member(org, Role.EDITOR)
    folder_id = _folder(owner, "Drafts")
    page = editor.client.get(f"/library/{owner.root_folder_id}", headers=HTML)
    assert "Drafts" in page.text
    assert "Share with partners" not in page.text
    assert editor.client.get(f"/share/folder/{folder_id}", headers=HTML).status_code == 403
    uni = world.org("uni", OrgKind.PARTNER)
    refused = editor.client.post(
        f"/share/folder/{folder_id}", data={"grantee_org_id": str(uni.id), "level": "view"}, headers=_htmx(editor)
    )
    assert refused.status_code == 403


def test_share_without_javascript_is_a_page(owner: Member, world: World) -> None:
    uni = world.org("uni", OrgKind.PARTNER)
    folder_id = _folder(owner, "Plain")
    page = owner.client.get(f"/share/folder/{folder_id}", headers=HTML)
    assert page.status_code == 200
    assert parse_html(page).is_full_document()
    posted = owner.client.post(
        f"/share/folder/{folder_id}",
        data={"grantee_org_id": str(uni.id), "level": "view", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/share/folder/{folder_id}"


# --- Audit log ----------------------------------------------------------------------------------------------


def test_audit_page_filters_and_exports(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    _folder(owner, "Audited folder")
    _invite(owner, "audited@example.edu", role="editor")
    _ = viewer

    page = owner.client.get("/settings/audit", headers=HTML)
    assert page.status_code == 200
    assert "invitation.create" in page.text
    assert "folder.create" in page.text or "Audited folder" in page.text
    assert parse_html(page).select_one('option[value="invitation.create"]')
    assert "editor" in parse_html(page).texts("ins")

    only_invites = owner.client.get("/settings/audit?action=invitation.create", headers=HTML)
    assert "audited@example.edu" in only_invites.text
    assert "Audited folder" not in only_invites.text
    by_target = owner.client.get("/settings/audit?target=audited%20folder", headers=HTML)
    assert "Audited folder" in by_target.text
    assert "audited@example.edu" not in by_target.text
    nobody = owner.client.get("/settings/audit?actor=nobody-at-all", headers=HTML)
    assert "No entries match these filters" in nobody.text
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    old = owner.client.get(f"/settings/audit?until={yesterday}", headers=HTML)
    assert "No entries match these filters" in old.text
    today = owner.client.get(f"/settings/audit?since={utcnow().date().isoformat()}", headers=HTML)
    assert "audited@example.edu" in today.text
    assert owner.client.get("/settings/audit?since=yesterday", headers=HTML).status_code == 422

    link = parse_html(only_invites).attr('a[href^="/api/v1/orgs/"][href*="/audit.csv"]', "href")
    assert "action=invitation.create" in link
    exported = owner.client.get(link)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in rows] == ["invitation.create"]

    assert viewer.client.get("/settings/audit", headers=HTML).status_code == 403


def test_audit_page_pages_through_entries(owner: Member) -> None:
    for n in range(53):
        _folder(owner, f"Folder {n:02}")
    first = owner.client.get("/settings/audit?action=folder.create", headers=HTML)
    assert "Folder 52" in first.text
    assert "Folder 02" not in first.text
    older = parse_html(first).attr('a[rel="next"]', "href")
    assert older.startswith("/settings/audit?")
    assert "action=folder.create" in older
    second = owner.client.get(older, headers=HTML)
    assert "Folder 02" in second.text
    assert "Folder 52" not in second.text
    assert parse_html(second).select_one('[rel="prev"]')
    assert parse_html(second).select_one('[rel="next"]') is None


def test_new_pages_have_no_inline_script_or_style(owner: Member, world: World) -> None:
    folder_id = _folder(owner, "Styled")
    world.org("uni", OrgKind.PARTNER)
    link = _invite(owner, "styled@example.edu")
    guest = TestClient(world.app, base_url="http://testserver")
    pages = [(owner.client, p) for p in ("/settings/organization", "/settings/audit", "/shared")]
    pages += [(owner.client, f"/share/folder/{folder_id}"), (guest, link)]
    for client, path in pages:
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, path
        assert_no_inline_script_but_the_import_map(response, path)
        shown = parse_html(response)
        assert shown.select("[style]") == [], path
        assert [name for tag in shown.select("*") for name in tag.attrs if name.startswith("hx-on")] == [], path
