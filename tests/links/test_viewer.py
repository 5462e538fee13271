"""The viewer behind a link: the embed policy, limits, refusals (recorded), previews, renewal and revocation."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import Link, Refusal
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import make_folder, tiny_png, uploaded
from tests.links.support import EMBEDDED, LMS, create_link, link_path, settle, visitor
from tests.sharing.support import grant, partnership


def _refusals(world: World) -> list[str]:
    with unit_of_work(world.services.read_sessions) as db:
        return list(db.scalars(select(Refusal.reason).order_by(Refusal.at)))


def test_an_embedded_visit_shows_the_material_with_frame_ancestors(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "diagram.png", tiny_png())
    page = visitor(owner).get(link_path(create_link(owner, file["id"])), headers=EMBEDDED)
    assert page.status_code == 200, page.text
    csp = page.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {LMS}" in csp
    assert "x-frame-options" not in page.headers
    media = parse_html(page).attr("img[data-media]", "src")
    assert media.startswith("/m/")
    image = visitor(owner).get(media)
    assert image.status_code == 200
    assert image.content == tiny_png()


def test_a_missing_referer_does_not_block_a_legitimate_embed(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    headers = {"sec-fetch-dest": "iframe", "sec-fetch-site": "cross-site"}
    assert visitor(owner).get(link_path(create_link(owner, file["id"])), headers=headers).status_code == 200


def test_top_level_and_foreign_parents_are_refused_and_recorded(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"]))
    top = visitor(owner).get(path, headers={"sec-fetch-dest": "document", "sec-fetch-site": "none"})
    assert top.status_code == 403
    assert "available inside your course" in top.text
    foreign = {**EMBEDDED, "referer": "https://pirate.example.com/page"}
    assert visitor(owner).get(path, headers=foreign).status_code == 403
    assert _refusals(world) == ["top-level", "origin"]


def test_a_direct_link_opens_on_its_own(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"], mode="direct"))
    assert visitor(owner).get(path, headers={"sec-fetch-dest": "document"}).status_code == 200


def test_expired_revoked_and_used_up_links_are_refused(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    expired = create_link(owner, file["id"]).json()
    with unit_of_work(world.services.write_sessions) as db:
        db.execute(update(Link).where(Link.id == expired["id"]).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert visitor(owner).get(f"/v/{expired['id']}", headers=EMBEDDED).status_code == 403
    revoked = create_link(owner, file["id"]).json()
    owner.client.post(f"/api/v1/links/{revoked['id']}/revoke", headers=owner.headers())
    assert visitor(owner).get(f"/v/{revoked['id']}", headers=EMBEDDED).status_code == 403
    limited = link_path(create_link(owner, file["id"], max_views=2))
    assert [visitor(owner).get(limited, headers=EMBEDDED).status_code for _ in range(3)] == [200, 200, 403]
    assert _refusals(world) == ["expired", "revoked", "over-limit"]


def test_link_previewers_never_consume_views(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], max_views=1, label="Week 1").json()
    for agent in (
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "SkypeUriPreview Preview/0.5",
        "Googlebot/2.1",
    ):
        preview = visitor(owner).get(f"/v/{created['id']}", headers={**EMBEDDED, "user-agent": agent})
        assert preview.status_code == 200
        assert "/m/" not in preview.text
    assert visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED).status_code == 200
    assert owner.client.get(f"/api/v1/links/{created['id']}").json()["view_count"] == 1


def test_malformed_and_unknown_link_ids_are_404(owner: Member) -> None:
    for path in ("/v/short", "/v/" + "x" * 22, "/v/" + "%00" * 22):
        page = visitor(owner).get(path, headers=EMBEDDED)
        assert page.status_code == 404
        assert "Traceback" not in page.text


def test_a_folder_link_browses_its_subtree_only(owner: Member) -> None:
    week = make_folder(owner, owner.root_folder_id, "Week 1")
    inside = uploaded(owner, week["id"], "inside.txt", b"inside")
    outside = uploaded(owner, owner.root_folder_id, "outside.txt", b"outside")
    path = link_path(create_link(owner, week["id"], target_type="folder"))
    listing = visitor(owner).get(path, headers=EMBEDDED)
    assert "inside.txt" in listing.text
    assert "outside.txt" not in listing.text
    assert visitor(owner).get(f"{path}?file={inside['id']}", headers=EMBEDDED).status_code == 200
    assert visitor(owner).get(f"{path}?file={outside['id']}", headers=EMBEDDED).status_code == 404


def test_renewal_gives_fresh_urls_until_the_grant_is_revoked(world: World) -> None:
    p = partnership(world)
    grant_id = grant(p.publisher, p.course["id"], p.partner.id).json()["id"]
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id))
    assert created.status_code == 201, created.text
    page = visitor(p.student).get(link_path(created), headers=EMBEDDED)
    token = parse_html(page).attr("[data-viewer]", "data-token")
    renew_url = f"{link_path(created)}/media"
    body = {"token": token, "file_id": p.notes["id"]}
    renewed = visitor(p.student).post(renew_url, json=body)
    assert renewed.status_code == 200
    assert renewed.json()["url"].startswith("/m/")
    p.publisher.client.delete(f"/api/v1/grants/{grant_id}", headers=p.publisher.headers())
    assert visitor(p.student).post(renew_url, json=body).status_code == 403
    assert visitor(p.student).get(link_path(created), headers=EMBEDDED).status_code == 403
    assert _refusals(world)[-2:] == ["grant-revoked", "grant-revoked"]
    forged = visitor(p.student).post(renew_url, json={**body, "token": "99999999999.deadbeef"})
    assert forged.status_code == 403


def test_a_link_spreading_over_too_many_networks_is_suspended_and_can_be_reenabled(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"]).json()
    policy = owner.client.patch(
        f"/api/v1/orgs/{owner.org_id}/link-policy", json={"max_networks_per_hour": 3}, headers=owner.headers()
    )
    assert policy.json()["max_networks_per_hour"] == 3
    path = f"/v/{created['id']}"

    def visit_from(n: int) -> int:
        learner = TestClient(world.app, base_url="http://testserver", client=(f"198.51.{n}.7", 50000))
        return learner.get(path, headers=EMBEDDED).status_code

    # Sightings are written by the radar's thread once a second: four networks are admitted within that lag,
    # the batch then suspends the link, and the next visit is refused.
    assert [visit_from(n) for n in range(4)] == [200, 200, 200, 200]
    assert world.app.state.sightings.flush() == 4
    assert visit_from(4) == 403
    state = owner.client.get(f"/api/v1/links/{created['id']}").json()
    assert state["status"] == "suspended"
    assert "networks" in state["suspended_reason"]
    owner.client.post(f"/api/v1/links/{created['id']}/reactivate", headers=owner.headers())
    assert owner.client.get(f"/api/v1/links/{created['id']}").json()["status"] == "active"
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalar(select(func.count()).select_from(Refusal).where(Refusal.reason == "suspended")) == 1


def test_refusals_inside_an_allowed_frame_can_be_shown_there(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], max_views=1).json()
    visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED)
    used_up = visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED)
    assert used_up.status_code == 403
    assert f"frame-ancestors 'self' {LMS}" in used_up.headers["content-security-policy"]
    unknown = visitor(owner).get("/v/" + "A" * 22, headers=EMBEDDED)
    assert "frame-ancestors 'self'" in unknown.headers["content-security-policy"]
    assert LMS not in unknown.headers["content-security-policy"]


def test_a_tampered_media_url_is_refused_and_recorded(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "diagram.png", tiny_png())
    created = create_link(owner, file["id"]).json()
    page = visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED)
    url = parse_html(page).attr("img[data-media]", "src")
    assert url.startswith("/m/")
    tampered = url[:-12] + ("x" if url[-12] != "x" else "y") + url[-11:]
    assert visitor(owner).get(tampered).status_code == 403
    assert _refusals(world) == ["bad-signature"]


def test_a_media_url_to_purged_bytes_is_a_clean_404(world: World, owner: Member) -> None:
    big = b"%PDF-1.4\n" + b"%" * 400_000  # a PDF above the small-blob memory cache
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", big)
    created = create_link(owner, file["id"]).json()
    viewer = parse_html(visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED))
    media = viewer.attr("[data-media-pdf]", "data-pdf-src")
    assert media.startswith("/m/")
    world.services.blobs.delete(file["sha256"])
    gone = visitor(owner).get(media)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


def test_an_unlimited_links_views_are_counted_by_the_drain_once_each(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"]).json()
    for _ in range(3):
        assert visitor(owner).get(f"/v/{created['id']}", headers=EMBEDDED).status_code == 200
    assert owner.client.get(f"/api/v1/links/{created['id']}").json()["view_count"] == 0  # nothing written yet
    settle(world)
    settle(world)  # a second drain finds nothing new to add
    assert owner.client.get(f"/api/v1/links/{created['id']}").json()["view_count"] == 3
