"""The one renewal service, through a share link's route: fresh URLs, and problem+json refusals with stable types."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import Refusal
from studyshelf.web.errors import PROBLEM_BASE
from tests.conftest import Member, World
from tests.library.support import make_folder, uploaded
from tests.links.support import EMBEDDED, create_link, link_path, visitor


def _viewer(owner: Member, target_id: str, target_type: str = "file") -> tuple[str, str]:
    """The renewal URL and viewer token of a link's viewer page."""
    page = visitor(owner).get(link_path(create_link(owner, target_id, target_type=target_type)), headers=EMBEDDED)
    assert page.status_code == 200, page.text
    renew_url = re.search(r'data-renew-url="([^"]+)"', page.text)
    token = re.search(r'data-token="([^"]+)"', page.text)
    assert renew_url is not None
    assert token is not None
    return renew_url.group(1), token.group(1)


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    return body


def test_a_link_viewer_renews_through_its_own_path(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    renew_url, token = _viewer(owner, file["id"])
    assert re.fullmatch(r"/v/[A-Za-z0-9_-]{22}/media", renew_url)
    fresh = visitor(owner).post(renew_url, json={"token": token, "file_id": file["id"]})
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["cache-control"] == "no-store"
    assert fresh.json()["url"].startswith("/m/")
    assert fresh.json()["download_url"] is None  # the link does not allow downloads


def test_a_forged_token_ends_the_session(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    renew_url, _token = _viewer(owner, file["id"])
    forged = visitor(owner).post(renew_url, json={"token": "99999999999.deadbeef", "file_id": file["id"]})
    _problem(forged, 403, "viewer-session-ended")


def test_a_revoked_link_refuses_with_its_reason_and_records_it(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    renew_url, token = _viewer(owner, file["id"])
    link_id = renew_url.split("/")[2]
    owner.client.post(f"/api/v1/links/{link_id}/revoke", headers=owner.headers())
    refused = visitor(owner).post(renew_url, json={"token": token, "file_id": file["id"]})
    body = _problem(refused, 403, "view-unavailable")
    assert body["reason"] == "revoked"
    with unit_of_work(world.services.read_sessions) as db:
        assert list(db.scalars(select(Refusal.reason).where(Refusal.link_id == link_id))) == ["revoked"]


def test_a_file_outside_the_link_is_not_in_view(owner: Member) -> None:
    week = make_folder(owner, owner.root_folder_id, "Week 1")
    inside = uploaded(owner, week["id"], "inside.txt", b"inside")
    outside = uploaded(owner, owner.root_folder_id, "outside.txt", b"outside")
    link = create_link(owner, week["id"], target_type="folder")
    page = visitor(owner).get(f"{link_path(link)}?file={inside['id']}", headers=EMBEDDED)
    token = re.search(r'data-token="([^"]+)"', page.text)
    assert token is not None
    renew_url = f"{link_path(link)}/media"
    assert visitor(owner).post(renew_url, json={"token": token.group(1), "file_id": inside["id"]}).status_code == 200
    outside_body = {"token": token.group(1), "file_id": outside["id"]}
    _problem(visitor(owner).post(renew_url, json=outside_body), 404, "not-in-view")
