"""Roles × actions × situations over the API: every cell says allowed or denied, and how it is denied.

Situations: the actor's own content, content shared with the actor's organisation for viewing or
managing, content not shared, shared with an expired or a revoked grant, deleted content, and the
content of another tenant. Denied reads of content the actor cannot see are 404, never 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import Grant, OrgKind, Role
from tests.conftest import Member, World
from tests.library.support import make_folder, uploaded

SITUATIONS = [
    "own",
    "granted_view",
    "granted_manage",
    "not_granted",
    "expired_grant",
    "revoked_grant",
    "deleted",
    "other_tenant",
]
ROLES = [Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER]
READ, WRITE, SHARE = "read", "write", "share"


@dataclass
class Scene:
    actor: Member
    folder_id: str  # the folder the situation is about
    file_id: str  # a file inside it
    partner_org_id: uuid.UUID
    third_org_id: uuid.UUID


def _grant(owner: Member, folder_id: str, grantee: uuid.UUID, level: str) -> str:
    response = owner.client.post(
        "/api/v1/grants",
        json={"target_type": "folder", "target_id": folder_id, "grantee_org_id": str(grantee), "level": level},
        headers=owner.headers(),
    )
    assert response.status_code == 201, response.text
    grant_id: str = response.json()["id"]
    return grant_id


def build_scene(world: World, situation: str, role: Role) -> Scene:
    operator = world.org("publisher", OrgKind.OPERATOR)
    partner = world.org("university", OrgKind.PARTNER)
    third = world.org("college", OrgKind.PARTNER)
    publisher_owner = world.member(operator, Role.OWNER)
    actor_org = operator if situation in {"own", "deleted"} else partner
    actor = world.member(actor_org, role)
    content_owner = publisher_owner
    if situation == "other_tenant":
        content_owner = world.member(third, Role.OWNER)
    folder = make_folder(content_owner, content_owner.root_folder_id, "Course")
    file = uploaded(content_owner, folder["id"], "notes.txt", b"lecture notes")
    if situation in {"granted_view", "expired_grant", "revoked_grant"}:
        grant_id = _grant(publisher_owner, folder["id"], partner.id, "view")
        if situation == "expired_grant":
            with unit_of_work(world.services.write_sessions) as db:
                db.execute(
                    update(Grant)
                    .where(Grant.id == uuid.UUID(grant_id))
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
        if situation == "revoked_grant":
            response = publisher_owner.client.delete(f"/api/v1/grants/{grant_id}", headers=publisher_owner.headers())
            assert response.status_code == 204
    if situation == "granted_manage":
        _grant(publisher_owner, folder["id"], partner.id, "manage")
    if situation == "deleted":
        response = publisher_owner.client.delete(f"/api/v1/folders/{folder['id']}", headers=publisher_owner.headers())
        assert response.status_code == 204
    return Scene(actor, folder["id"], file["id"], partner.id, third.id)


Action = Callable[[Scene], httpx.Response]


def _post(scene: Scene, url: str, body: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = scene.actor.client.post(url, json=body, headers=scene.actor.headers())
    return response


ACTIONS: dict[str, tuple[str, Action]] = {
    "get folder": (READ, lambda s: s.actor.client.get(f"/api/v1/folders/{s.folder_id}")),
    "list children": (READ, lambda s: s.actor.client.get(f"/api/v1/folders/{s.folder_id}/children")),
    "get file": (READ, lambda s: s.actor.client.get(f"/api/v1/files/{s.file_id}")),
    "download": (READ, lambda s: s.actor.client.get(f"/api/v1/files/{s.file_id}/content")),
    "versions": (READ, lambda s: s.actor.client.get(f"/api/v1/files/{s.file_id}/versions")),
    "create subfolder": (WRITE, lambda s: _post(s, "/api/v1/folders", {"name": "Week 2", "parent_id": s.folder_id})),
    "upload": (
        WRITE,
        lambda s: s.actor.client.post(
            f"/api/v1/folders/{s.folder_id}/files",
            files={"file": ("a.txt", b"new", "text/plain")},
            headers=s.actor.headers(),
        ),
    ),
    "new version": (
        WRITE,
        lambda s: s.actor.client.post(
            f"/api/v1/files/{s.file_id}/versions",
            files={"file": ("b.txt", b"v2", "text/plain")},
            headers=s.actor.headers(),
        ),
    ),
    "rename file": (
        WRITE,
        lambda s: s.actor.client.patch(
            f"/api/v1/files/{s.file_id}", json={"name": "renamed.txt"}, headers=s.actor.headers()
        ),
    ),
    "delete file": (WRITE, lambda s: s.actor.client.delete(f"/api/v1/files/{s.file_id}", headers=s.actor.headers())),
    "share": (
        SHARE,
        lambda s: _post(
            s,
            "/api/v1/grants",
            {"target_type": "folder", "target_id": s.folder_id, "grantee_org_id": str(s.third_org_id), "level": "view"},
        ),
    ),
}


def expected(situation: str, role: Role, kind: str) -> int | None:
    """None means allowed (2xx); otherwise the status of the refusal."""
    visible = situation in {"own", "granted_view", "granted_manage"}
    if not visible:
        return 404
    if kind == READ:
        return None
    if kind == SHARE:
        if situation == "own":
            return None if role.rank >= Role.ADMIN.rank else 403
        return 404  # sharing belongs to the owning organisation, which the grantee cannot see
    writable = situation in {"own", "granted_manage"}
    if writable and role.rank >= Role.EDITOR.rank:
        return None
    return 403


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
@pytest.mark.parametrize("situation", SITUATIONS)
def test_authorization_matrix(world: World, situation: str, role: Role) -> None:
    failures = []
    scene = build_scene(world, situation, role)
    # One scene serves every action: they run in order, and only the last two change what the others need.
    for name, (kind, action) in ACTIONS.items():
        response = action(scene)
        want = expected(situation, role, kind)
        ok = 200 <= response.status_code < 300 if want is None else response.status_code == want
        if not ok:
            failures.append(f"{name}: expected {want or '2xx'}, got {response.status_code} {response.text[:120]}")
        if want is not None and response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert not failures, "\n".join(failures)
