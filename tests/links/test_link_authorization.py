"""Who may create, change, revoke and re-enable a link: editors change, admins lift the leak radar's pause.

A viewer (or a token capped to viewer) and a platform admin of another organisation may read a link,
never change it; refusals are 403 problem+json and leave the link as it was, in the API and in the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery import radar
from studyshelf.delivery.models import Link
from studyshelf.partners.models import Role, User
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import assert_problem, uploaded
from tests.links.support import LMS, create_link, viewer_token_client
from tests.sharing.support import grant, partnership

HTMX = {"HX-Request": "true"}
RAISE_EVERYTHING = {
    "max_views": 10_000_000,
    "allow_download": True,
    "mode": "direct",
    "allowed_origins": ["https://elsewhere.example.org"],
}


@dataclass
class Campus:
    world: World
    owner: Member
    admin: Member
    editor: Member
    viewer: Member
    file_id: str
    link_id: str  # owner's embed link, max 100 views, no downloads


@pytest.fixture
def campus(world: World) -> Campus:
    org = world.org("campus")
    owner = world.member(org, Role.OWNER)
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], max_views=100, label="Biology 101")
    assert created.status_code == 201, created.text
    admin, editor, viewer = (world.member(org, role) for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER))
    return Campus(world, owner, admin, editor, viewer, file_id=file["id"], link_id=created.json()["id"])


def stored(world: World, link_id: str) -> tuple[Any, ...]:
    """What the database holds for the link's settings and state."""
    with unit_of_work(world.services.read_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        return (
            link.max_views,
            link.allow_download,
            link.mode,
            link.allowed_origins,
            link.expires_at,
            link.label,
            link.revoked_at,
            link.suspended_at,
        )


def suspend_by_radar(world: World, owner: Member, link_id: str) -> None:
    """Let the leak radar pause the link: a threshold of one network, and visits from two."""
    lowered = owner.client.patch(
        f"/api/v1/orgs/{owner.org_id}/link-policy", json={"max_networks_per_hour": 1}, headers=owner.headers()
    )
    assert lowered.status_code == 200, lowered.text
    recorder = world.app.state.sightings
    for n in (1, 2):
        recorder.note(link_id=link_id, visitor=radar.Visitor(ip=f"198.51.{n}.7", salt="s"), now=utcnow())
    recorder.flush()
    assert owner.client.get(f"/api/v1/links/{link_id}").json()["status"] == "suspended"


def later(days: int = 300) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def assert_every_write_refused(client: TestClient, headers: dict[str, str], link_id: str) -> None:
    patched = client.patch(
        f"/api/v1/links/{link_id}", json={**RAISE_EVERYTHING, "expires_at": later()}, headers=headers
    )
    assert_problem(patched, 403, "permission-denied")
    assert_problem(client.post(f"/api/v1/links/{link_id}/revoke", headers=headers), 403, "permission-denied")
    assert_problem(client.post(f"/api/v1/links/{link_id}/reactivate", headers=headers), 403, "permission-denied")
    assert client.get(f"/api/v1/links/{link_id}", headers=headers).status_code == 200  # reading is still allowed


def test_a_viewer_cannot_change_revoke_or_reactivate_a_link(campus: Campus) -> None:
    suspend_by_radar(campus.world, campus.owner, campus.link_id)
    before = stored(campus.world, campus.link_id)
    assert_every_write_refused(campus.viewer.client, campus.viewer.headers(), campus.link_id)
    assert stored(campus.world, campus.link_id) == before


def test_an_owners_token_capped_to_viewer_cannot_change_revoke_or_reactivate_a_link(campus: Campus) -> None:
    suspend_by_radar(campus.world, campus.owner, campus.link_id)
    before = stored(campus.world, campus.link_id)
    client, headers = viewer_token_client(campus.world, campus.owner)
    assert_every_write_refused(client, headers, campus.link_id)
    assert stored(campus.world, campus.link_id) == before


def test_viewers_and_viewer_tokens_cannot_create_links(campus: Campus) -> None:
    refused = create_link(campus.viewer, campus.file_id, max_views=10_000_000, allow_download=True)
    assert_problem(refused, 403, "permission-denied")
    client, headers = viewer_token_client(campus.world, campus.owner)
    body = {"target_type": "file", "target_id": campus.file_id, "allowed_origins": [LMS]}
    assert_problem(client.post("/api/v1/links", json=body, headers=headers), 403, "permission-denied")
    listed = campus.owner.client.get("/api/v1/links", params={"org_id": str(campus.owner.org_id)}).json()
    assert [link["id"] for link in listed] == [campus.link_id]
    assert create_link(campus.editor, campus.file_id).status_code == 201


def test_an_editor_changes_a_link_but_only_an_admin_lifts_the_radars_pause(campus: Campus) -> None:
    editor, admin, link_id = campus.editor, campus.admin, campus.link_id
    changed = editor.client.patch(f"/api/v1/links/{link_id}", json={"max_views": 500}, headers=editor.headers())
    assert changed.status_code == 200, changed.text
    assert stored(campus.world, link_id)[0] == 500
    suspend_by_radar(campus.world, campus.owner, link_id)
    refused = editor.client.post(f"/api/v1/links/{link_id}/reactivate", headers=editor.headers())
    assert "admin" in assert_problem(refused, 403, "permission-denied")["detail"]
    assert stored(campus.world, link_id)[-1] is not None  # still suspended
    lifted = admin.client.post(f"/api/v1/links/{link_id}/reactivate", headers=admin.headers())
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["status"] == "active"
    revoked = editor.client.post(f"/api/v1/links/{link_id}/revoke", headers=editor.headers())
    assert revoked.json()["status"] == "revoked"


def test_a_platform_admin_reads_a_partners_link_but_cannot_change_it(world: World) -> None:
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id), max_views=10)
    link_id = created.json()["id"]
    with unit_of_work(world.services.write_sessions) as db:
        user = db.get(User, p.publisher.user_id)
        assert user is not None
        user.is_platform_admin = True
    before = stored(world, link_id)
    assert_every_write_refused(p.publisher.client, p.publisher.headers(), link_id)
    policy = p.publisher.client.patch(
        f"/api/v1/orgs/{p.partner.id}/link-policy", json={"max_ttl_days": 3650}, headers=p.publisher.headers()
    )
    assert_problem(policy, 403, "permission-denied")
    assert stored(world, link_id) == before


# --- The same checks behind the link pages' forms -----------------------------------------------------------


def page_post(member: Member, path: str, **form: str) -> int:
    response = member.client.post(path, data={"back": "/links", **form}, headers={**HTMX, **member.headers()})
    status: int = response.status_code
    return status


def test_the_link_pages_refuse_a_viewer_and_offer_no_buttons(campus: Campus) -> None:
    suspend_by_radar(campus.world, campus.owner, campus.link_id)
    before = stored(campus.world, campus.link_id)
    viewer, link_id = campus.viewer, campus.link_id
    day = (utcnow().date() + timedelta(days=200)).isoformat()
    assert page_post(viewer, f"/links/{link_id}/edit", expires_on=day, allowed_origins="https://x.example.org") == 403
    assert (
        page_post(viewer, f"/links/{link_id}/edit", expires_on=before[4].date().isoformat(), allowed_origins=LMS) == 403
    )
    assert page_post(viewer, f"/links/{link_id}/revoke") == 403
    assert page_post(viewer, f"/links/{link_id}/reactivate") == 403
    created = page_post(viewer, f"/get-link/file/{campus.file_id}", mode="direct", expires_on=day, max_views="9999999")
    assert created == 403
    assert stored(campus.world, link_id) == before
    assert len(campus.owner.client.get("/api/v1/links", params={"org_id": str(campus.owner.org_id)}).json()) == 1

    page = viewer.client.get("/links").text
    assert "Biology 101" in page
    assert f"/links/{link_id}/revoke" not in page
    assert f"/links/{link_id}/edit" not in page
    assert f"/links/{link_id}/reactivate" not in page
    dialog = viewer.client.get(f"/get-link/file/{campus.file_id}", headers=HTMX).text
    assert "Only editors and admins" in dialog
    assert parse_html(dialog).select_one('[name="max_views"]') is None

    editor_page = campus.editor.client.get("/links").text
    assert parse_html(editor_page).select_one(f'form[action="/links/{link_id}/revoke"]')
    assert f"/links/{link_id}/reactivate" not in editor_page
    assert page_post(campus.editor, f"/links/{link_id}/reactivate") == 403
    assert parse_html(campus.admin.client.get("/links")).select_one(f'form[action="/links/{link_id}/reactivate"]')
    assert page_post(campus.admin, f"/links/{link_id}/reactivate") == 200
    assert stored(campus.world, link_id)[-1] is None


def test_an_editor_extends_a_link_through_its_form(campus: Campus) -> None:
    day = (utcnow().date() + timedelta(days=200)).isoformat()
    assert page_post(campus.editor, f"/links/{campus.link_id}/edit", expires_on=day, allowed_origins=LMS) == 200
    expires_at: datetime = stored(campus.world, campus.link_id)[4]
    assert expires_at.date().isoformat() == day
