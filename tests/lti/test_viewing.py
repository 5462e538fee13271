"""An LTI launch through the one viewing path: the one viewer template and the one renewal service."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from studyshelf.delivery import viewing
from studyshelf.services import Services
from studyshelf.web.errors import PROBLEM_BASE
from tests.library.support import uploaded
from tests.lti.conftest import Campus, data_attr, launch, login, register, target_of
from tests.lti.platform import CLAIM, INSTRUCTOR, Simulator


def _launched(campus: Campus, simulator: Simulator, *, roles: list[str] | None = None) -> str:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    extra: dict[str, Any] = {CLAIM + "custom": target_of(campus.notes)}
    if roles is not None:
        extra[CLAIM + "roles"] = roles
    token = platform.sign(platform.claims(nonce=started.nonce, extra=extra))
    page = launch(campus.lms, platform, token, started.state)
    assert page.status_code == 200, page.text
    return page.text


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    return body


def test_a_teacher_sees_the_placement_above_the_one_viewer(campus: Campus, simulator: Simulator) -> None:
    page = _launched(campus, simulator, roles=[INSTRUCTOR])
    assert "lti-placement" in page
    assert 'class="viewer-stage"' in page
    assert data_attr(page, "renew-url").startswith("/lti/media/lti-")


def test_renewal_refusals_are_problems_with_stable_types(campus: Campus, simulator: Simulator) -> None:
    page = _launched(campus, simulator)
    renew_url, token = data_attr(page, "renew-url"), data_attr(page, "token")
    forged = campus.lms.post(renew_url, json={"token": "99999999999.deadbeef", "file_id": campus.notes["id"]})
    _problem(forged, 403, "viewer-session-ended")
    elsewhere = uploaded(campus.publisher, campus.publisher.root_folder_id, "elsewhere.txt", b"not in the course")
    outside = campus.lms.post(renew_url, json={"token": token, "file_id": elsewhere["id"]})
    _problem(outside, 404, "not-in-view")
    campus.publisher.client.delete(f"/api/v1/grants/{campus.grant_id}", headers=campus.publisher.headers())
    ended = campus.lms.post(renew_url, json={"token": token, "file_id": campus.notes["id"]})
    assert _problem(ended, 403, "view-unavailable")["reason"] == "grant-revoked"


def test_a_launch_nobody_knows_is_not_found(campus: Campus, services: Services) -> None:
    scope = "lti-" + uuid.uuid4().hex
    token = viewing.viewer_token(services.keys, scope, int(time.time()) + 60)
    missing = campus.lms.post(f"/lti/media/{scope}", json={"token": token, "file_id": campus.notes["id"]})
    _problem(missing, 404, "view-scope-not-found")


def test_the_badges_are_one_table() -> None:
    assert viewing.badge_of("text") == "TXT"
    assert viewing.badge_of("folder") == "DIR"
    assert viewing.badge_of("spreadsheet-of-the-future") == "FILE"
