"""Grants: sharing with partners, inheritance down the tree, revocation and expiry, and bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.partners.grants import org_has_access
from studyshelf.partners.models import Grant
from tests.conftest import World
from tests.library.support import assert_problem, make_folder, uploaded
from tests.sharing.support import grant, partnership


def test_a_view_grant_reaches_the_whole_subtree_and_nothing_else(world: World) -> None:
    p = partnership(world)
    week = make_folder(p.publisher, p.course["id"], "Week 1")
    slides = uploaded(p.publisher, week["id"], "slides.txt", b"slides")
    other = make_folder(p.publisher, p.publisher.root_folder_id, "Other course")
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201

    assert p.student.client.get(f"/api/v1/files/{slides['id']}/content").content == b"slides"
    children = p.student.client.get(f"/api/v1/folders/{p.course['id']}/children").json()["items"]
    assert [c["name"] for c in children] == ["Week 1", "notes.txt"]
    assert p.student.client.get(f"/api/v1/folders/{other['id']}").status_code == 404
    assert p.student.client.get(f"/api/v1/folders/{p.publisher.root_folder_id}/children").status_code == 404


def test_breadcrumbs_of_a_grantee_start_at_the_shared_folder(world: World) -> None:
    p = partnership(world)
    week = make_folder(p.publisher, p.course["id"], "Week 1")
    grant(p.publisher, p.course["id"], p.partner.id)
    path = p.student.client.get(f"/api/v1/folders/{week['id']}").json()["path"]
    assert [c["name"] for c in path] == ["Course", "Week 1"]
    owner_path = p.publisher.client.get(f"/api/v1/folders/{week['id']}").json()["path"]
    assert [c["name"] for c in owner_path] == ["Library", "Course", "Week 1"]


def test_manage_lets_partner_editors_change_content_inside_but_not_the_shared_folder_itself(world: World) -> None:
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id, "manage").status_code == 201
    added = uploaded(p.teacher, p.course["id"], "homework.txt", b"do this")
    assert added["org_id"] == str(p.operator.id), "content created under a grant belongs to the owner"
    rename = p.teacher.client.patch(
        f"/api/v1/files/{p.notes['id']}", json={"name": "n.txt"}, headers=p.teacher.headers()
    )
    assert rename.status_code == 200
    assert_problem(
        p.teacher.client.delete(f"/api/v1/folders/{p.course['id']}", headers=p.teacher.headers()),
        403,
        "permission-denied",
    )
    assert_problem(
        p.student.client.delete(f"/api/v1/files/{added['id']}", headers=p.student.headers()), 403, "permission-denied"
    )


def test_moving_granted_content_out_to_a_folder_the_mover_may_not_manage_is_refused(world: World) -> None:
    p = partnership(world)
    outside = make_folder(p.publisher, p.publisher.root_folder_id, "Private")
    grant(p.publisher, p.course["id"], p.partner.id, "manage")
    moved = p.teacher.client.patch(
        f"/api/v1/files/{p.notes['id']}", json={"folder_id": outside["id"]}, headers=p.teacher.headers()
    )
    assert_problem(moved, 404, "not-found")
    assert p.publisher.client.get(f"/api/v1/files/{p.notes['id']}").json()["folder_id"] == p.course["id"]


def test_revoking_takes_effect_at_once_and_the_hook_says_so(world: World) -> None:
    p = partnership(world)
    grant_id = grant(p.publisher, p.course["id"], p.partner.id).json()["id"]
    assert p.student.client.get(f"/api/v1/files/{p.notes['id']}").status_code == 200
    with unit_of_work(world.services.read_sessions) as db:
        path = [uuid.UUID(p.publisher.root_folder_id.hex), uuid.UUID(p.course["id"]), uuid.UUID(p.notes["id"])]
        assert org_has_access(
            db, org_id=p.partner.id, owner_org_id=p.operator.id, path_ids=path, now=world.services.clock.now()
        )
    assert p.publisher.client.delete(f"/api/v1/grants/{grant_id}", headers=p.publisher.headers()).status_code == 204
    assert_problem(p.student.client.get(f"/api/v1/files/{p.notes['id']}"), 404, "not-found")
    assert_problem(p.student.client.get(f"/api/v1/files/{p.notes['id']}/content"), 404, "not-found")
    with unit_of_work(world.services.read_sessions) as db:
        assert not org_has_access(
            db, org_id=p.partner.id, owner_org_id=p.operator.id, path_ids=path, now=world.services.clock.now()
        )


def test_an_expired_grant_gives_nothing(world: World) -> None:
    p = partnership(world)
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    grant_id = grant(p.publisher, p.course["id"], p.partner.id, expires_at=soon).json()["id"]
    assert p.student.client.get(f"/api/v1/files/{p.notes['id']}").status_code == 200
    with unit_of_work(world.services.write_sessions) as db:
        db.execute(
            update(Grant).where(Grant.id == uuid.UUID(grant_id)).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert p.student.client.get(f"/api/v1/files/{p.notes['id']}").status_code == 404
    assert p.student.client.get(f"/api/v1/orgs/{p.partner.id}/shared").json() == []


def test_shared_with_us_lists_live_roots(world: World) -> None:
    p = partnership(world)
    grant(p.publisher, p.course["id"], p.partner.id)
    grant(p.publisher, p.notes["id"], p.partner.id, "manage", target_type="file")
    shared = p.student.client.get(f"/api/v1/orgs/{p.partner.id}/shared").json()
    assert sorted((s["kind"], s["name"], s["owner_name"]) for s in shared) == [
        ("file", "notes.txt", "Publisher"),
        ("folder", "Course", "Publisher"),
    ]
    p.publisher.client.delete(f"/api/v1/folders/{p.course['id']}", headers=p.publisher.headers())
    assert p.student.client.get(f"/api/v1/orgs/{p.partner.id}/shared").json() == []


def test_bad_grants_are_refused_and_change_nothing(world: World) -> None:
    p = partnership(world)
    with unit_of_work(world.services.read_sessions) as db:
        before = db.scalar(select(func.count()).select_from(Grant))
    assert_problem(grant(p.publisher, p.course["id"], p.operator.id), 422, "invalid")  # own organisation
    assert_problem(grant(p.publisher, p.course["id"], uuid.uuid4()), 422, "invalid")  # unknown organisation
    assert_problem(grant(p.publisher, p.course["id"], p.partner.id, "admin"), 422, "invalid")  # no such level
    past = (utcnow() - timedelta(days=1)).isoformat()
    assert_problem(grant(p.publisher, p.course["id"], p.partner.id, expires_at=past), 422, "invalid")
    assert_problem(grant(p.publisher, str(uuid.uuid4()), p.partner.id), 404, "not-found")
    p.publisher.client.delete(f"/api/v1/files/{p.notes['id']}", headers=p.publisher.headers())
    assert_problem(grant(p.publisher, p.notes["id"], p.partner.id, target_type="file"), 404, "not-found")  # deleted
    assert_problem(grant(p.teacher, p.course["id"], p.partner.id), 404, "not-found")  # not the owner
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalar(select(func.count()).select_from(Grant)) == before


def test_granting_again_replaces_the_live_grant(world: World) -> None:
    p = partnership(world)
    grant(p.publisher, p.course["id"], p.partner.id, "view")
    grant(p.publisher, p.course["id"], p.partner.id, "manage")
    grants = p.publisher.client.get(
        "/api/v1/grants", params={"target_type": "folder", "target_id": p.course["id"]}
    ).json()
    assert [g["level"] for g in grants] == ["manage"]
