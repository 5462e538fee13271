"""Pages for organisations: settings, members, invitations, sharing with partners, 'Shared with us', audit log."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import Invitation, Organization, OrgKind, Role
from tests.conftest import Member, World
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
    match = re.search(r'id="invitation-link"[^>]*value="https?://[^/"]+(/invitations/[^"]+)"', response.text)
    assert match, response.text
    return match.group(1)


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
    assert 'name="role"' in page.text
    assert "The last owner" in page.text  # the only owner's controls are disabled, with the reason
    assert 'href="/settings/audit"' in page.text
    read_only = viewer.client.get("/settings/organization", headers=HTML)
    assert read_only.status_code == 200
    assert owner.email in read_only.text
    assert "Invite someone" not in read_only.text
    assert "/role" not in read_only.text
    assert "Only admins and owners" in read_only.text
    assert 'href="/settings/audit"' not in read_only.text


def test_admin_cannot_touch_an_owner(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    admin = world.member(org, Role.ADMIN)
    page = admin.client.get("/settings/organization", headers=HTML)
    assert f"/settings/organization/members/{owner.user_id}/role" not in page.text
    assert 'value="owner"' not in page.text  # admins give roles up to admin
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
    assert 'id="members"' in changed.text
    assert "<html" not in changed.text
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
    assert f"/login?next={link}" in anonymous.text

    other = stranger.client.get(link, headers=HTML)
    assert other.status_code == 200
    assert f"this invitation is for <strong>{someone.email}</strong>" in other.text
    assert "/join" not in other.text

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
    invitation_id = re.search(r"/settings/organization/invitations/([0-9a-f-]{36})/revoke", page.text)
    assert invitation_id is not None
    revoked = owner.client.post(
        f"/settings/organization/invitations/{invitation_id.group(1)}/revoke", headers=_htmx(owner)
    )
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
    assert f'data-load="/share/folder/{folder_id}"' in folder_page.text
    assert 'id="share-dialog"' in folder_page.text
    panel = owner.client.get(f"/share/folder/{folder_id}", headers=HTMX)
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert "Not shared with any organisation yet" in panel.text
    assert f'<option value="{uni.id}">Uni</option>' in panel.text
    assert f'<option value="{operator.id}"' not in panel.text  # never with itself

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
    assert f'href="/library/{folder_id}"' in listing.text
    assert "Northwind" in listing.text
    browsed = student.client.get(f"/library/{folder_id}", headers=HTML)
    assert browsed.status_code == 200
    assert "reading.txt" in browsed.text
    assert f'href="/library/{owner.root_folder_id}"' not in browsed.text  # breadcrumbs start at the shared folder
    assert "New folder" not in browsed.text
    assert "data-dropzone" not in browsed.text
    assert "Share with partners" not in browsed.text

    grant_id = re.search(r'name="grant_id" value="([0-9a-f-]{36})"', shared.text)
    assert grant_id is not None
    revoked = owner.client.post(
        f"/share/folder/{folder_id}/revoke", data={"grant_id": grant_id.group(1)}, headers=_htmx(owner)
    )
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
    assert f'href="/files/{file_id}"' in listing.text
    page = student.client.get(f"/files/{file_id}", headers=HTML)
    assert page.status_code == 200
    assert "handout.txt" in page.text
    assert f"/library/{folder_id}" not in page.text
    assert "Share with partners" not in page.text
    owner_page = owner.client.get(f"/files/{file_id}", headers=HTML)
    assert f'data-load="/share/file/{file_id}"' in owner_page.text


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
    assert "<html" in page.text
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
    assert '<option value="invitation.create"' in page.text
    assert "<ins>editor</ins>" in page.text

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

    link = re.search(r'href="(/api/v1/orgs/[^"]+/audit\.csv[^"]*)"', only_invites.text)
    assert link is not None
    assert "action=invitation.create" in link.group(1)
    exported = owner.client.get(link.group(1).replace("&amp;", "&"))
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
    older = re.search(r'href="/settings/audit\?([^"]+)" rel="next"', first.text)
    assert older is not None
    assert "action=folder.create" in older.group(1)
    second = owner.client.get(f"/settings/audit?{older.group(1).replace('&amp;', '&')}", headers=HTML)
    assert "Folder 02" in second.text
    assert "Folder 52" not in second.text
    assert 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text


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
        assert " style=" not in response.text, path
        assert "hx-on" not in response.text, path
