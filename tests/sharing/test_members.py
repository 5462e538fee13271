"""Members, roles, invitations (with e-mail through a real local SMTP server) and organisation-scoped tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import Invitation, OrgKind, Role
from studyshelf.services import Services, build_services
from tests.conftest import Member, World
from tests.library.support import assert_problem
from tests.mail_support import SmtpInbox


def _invite(admin: Member, email: str, role: str = "editor") -> Any:
    response = admin.client.post(
        f"/api/v1/orgs/{admin.org_id}/invitations", json={"email": email, "role": role}, headers=admin.headers()
    )
    assert response.status_code == 201, response.text
    return response.json()


def _secret(invitation: dict[str, Any]) -> str:
    return str(invitation["url"]).rsplit("/", 1)[1]


def test_an_invitation_creates_an_account_once(world: World) -> None:
    owner = world.member(world.org())
    invitation = _invite(owner, "new.teacher@uni.test")
    assert invitation["emailed"] is False  # no SMTP configured: the link is shown instead
    guest = TestClient(world.app)
    accepted = guest.post(
        "/api/v1/invitations/accept", json={"token": _secret(invitation), "password": "a good password"}
    )
    assert accepted.status_code == 200, accepted.text
    members = owner.client.get(f"/api/v1/orgs/{owner.org_id}/members").json()
    assert {"new.teacher@uni.test": "editor"}.items() <= {m["user"]["email"]: m["role"] for m in members}.items()
    again = guest.post("/api/v1/invitations/accept", json={"token": _secret(invitation), "password": "a good password"})
    assert_problem(again, 422, "invalid")
    assert "used" in again.json()["detail"]


def test_expired_and_forged_invitations_are_refused(world: World) -> None:
    owner = world.member(world.org())
    invitation = _invite(owner, "late@uni.test")
    with unit_of_work(world.services.write_sessions) as db:
        db.execute(
            update(Invitation)
            .where(Invitation.id == uuid.UUID(invitation["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    guest = TestClient(world.app)
    expired = guest.post(
        "/api/v1/invitations/accept", json={"token": _secret(invitation), "password": "a good password"}
    )
    assert_problem(expired, 422, "invalid")
    assert "expired" in expired.json()["detail"]
    forged = guest.post("/api/v1/invitations/accept", json={"token": "x" * 43, "password": "a good password"})
    assert_problem(forged, 404, "not-found")


def test_an_invitation_is_for_its_address_only(world: World) -> None:
    org = world.org()
    owner = world.member(org)
    stranger = world.member(world.org("elsewhere", OrgKind.PARTNER))
    invitation = _invite(owner, "someone@uni.test")
    taken = stranger.client.post(
        "/api/v1/invitations/accept", json={"token": _secret(invitation)}, headers=stranger.headers()
    )
    assert_problem(taken, 403, "permission-denied")


def test_invitation_expires_in_seven_days(world: World) -> None:
    owner = world.member(world.org())
    invitation = _invite(owner, "week@uni.test")
    lifetime = datetime.fromisoformat(invitation["expires_at"]) - datetime.fromisoformat(invitation["created_at"])
    assert timedelta(days=7) - timedelta(seconds=5) < lifetime <= timedelta(days=7)


def test_invitations_are_sent_through_smtp(services: Services, smtp_inbox: SmtpInbox) -> None:
    smtp_url = f"{smtp_inbox.url}?from=shelf@example.test"
    # Same database as the `services` fixture (which cleans it up afterwards), plus a mail server.
    mailing = build_services(services.settings.model_copy(update={"smtp_url": smtp_url}))
    try:
        world = World(mailing)
        owner = world.member(world.org())
        invitation = _invite(owner, "mailed@uni.test", "viewer")
        assert invitation["emailed"] is True
        message = smtp_inbox.wait_for(1)[0]
        assert message["To"] == "mailed@uni.test"
        body = message.get_body(("plain",))
        assert body is not None
        assert invitation["url"] in body.get_content()
    finally:
        mailing.engine.dispose()


def test_roles_change_and_the_last_owner_stays(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    admin = world.member(org, Role.ADMIN)
    editor = world.member(org, Role.EDITOR)
    url = f"/api/v1/orgs/{org.id}/members"
    assert (
        owner.client.patch(f"{url}/{editor.user_id}", json={"role": "viewer"}, headers=owner.headers()).status_code
        == 200
    )
    assert_problem(
        admin.client.patch(f"{url}/{owner.user_id}", json={"role": "viewer"}, headers=admin.headers()),
        403,
        "permission-denied",
    )
    assert_problem(
        admin.client.patch(f"{url}/{editor.user_id}", json={"role": "owner"}, headers=admin.headers()),
        403,
        "permission-denied",
    )
    assert_problem(
        owner.client.patch(f"{url}/{owner.user_id}", json={"role": "admin"}, headers=owner.headers()), 409, "conflict"
    )
    assert_problem(owner.client.delete(f"{url}/{owner.user_id}", headers=owner.headers()), 409, "conflict")
    assert_problem(editor.client.delete(f"{url}/{admin.user_id}", headers=editor.headers()), 403, "permission-denied")
    roles = {m["user"]["email"]: m["role"] for m in owner.client.get(url).json()}
    assert roles == {owner.email: "owner", admin.email: "admin", editor.email: "viewer"}


def test_removing_a_member_revokes_their_tokens_there(world: World) -> None:
    org = world.org()
    owner = world.member(org)
    editor = world.member(org, Role.EDITOR)
    token = editor.client.post("/api/v1/auth/tokens", json={"name": "script"}, headers=editor.headers()).json()
    bearer = TestClient(world.app, headers={"Authorization": f"Bearer {token['token']}"})
    assert bearer.get("/api/v1/me").status_code == 200
    assert (
        owner.client.delete(f"/api/v1/orgs/{org.id}/members/{editor.user_id}", headers=owner.headers()).status_code
        == 204
    )
    assert_problem(bearer.get("/api/v1/me"), 401, "not-authenticated")
    assert_problem(bearer.get(f"/api/v1/folders/{owner.root_folder_id}/children"), 401, "not-authenticated")
    assert_problem(editor.client.get(f"/api/v1/folders/{owner.root_folder_id}/children"), 404, "not-found")


def test_tokens_are_scoped_to_one_organisation_and_capped(world: World) -> None:
    home, other = world.org(), world.org("second", OrgKind.PARTNER)
    member = world.member(home, Role.EDITOR)
    with unit_of_work(world.services.write_sessions) as db:
        from studyshelf.partners import service as partners
        from studyshelf.partners.models import Organization, User

        user = db.get(User, member.user_id)
        second = db.get(Organization, other.id)
        assert user is not None
        assert second is not None
        partners.add_member(db, user=user, org=second, role=Role.OWNER)
    too_high = member.client.post(
        "/api/v1/auth/tokens", json={"name": "x", "org_id": str(home.id), "role": "admin"}, headers=member.headers()
    )
    assert_problem(too_high, 422, "invalid")
    created = member.client.post(
        "/api/v1/auth/tokens", json={"name": "x", "org_id": str(home.id), "role": "viewer"}, headers=member.headers()
    ).json()
    assert created["org_id"] == str(home.id)
    assert created["role"] == "viewer"
    bearer = TestClient(world.app, headers={"Authorization": f"Bearer {created['token']}"})
    assert [o["slug"] for o in bearer.get("/api/v1/me").json()["organizations"]] == [home.slug]
    root = bearer.get("/api/v1/me").json()["organizations"][0]["root_folder_id"]
    assert_problem(bearer.post("/api/v1/folders", json={"name": "x", "parent_id": root}), 403, "permission-denied")
