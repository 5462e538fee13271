"""Every API error is RFC 9457 problem+json with a stable type, never a traceback."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from studyshelf.services import Services
from tests.conftest import Member
from tests.library.support import assert_problem, make_folder, stored_state, uploaded

UNKNOWN = "01890000-0000-7000-8000-000000000000"  # fixed, so xdist workers collect the same ids


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/folders/{UNKNOWN}"),
        ("GET", f"/api/v1/folders/{UNKNOWN}/children"),
        ("PATCH", f"/api/v1/folders/{UNKNOWN}"),
        ("DELETE", f"/api/v1/folders/{UNKNOWN}"),
        ("POST", f"/api/v1/folders/{UNKNOWN}/restore"),
        ("GET", f"/api/v1/files/{UNKNOWN}"),
        ("PATCH", f"/api/v1/files/{UNKNOWN}"),
        ("DELETE", f"/api/v1/files/{UNKNOWN}"),
        ("POST", f"/api/v1/files/{UNKNOWN}/restore"),
        ("GET", f"/api/v1/files/{UNKNOWN}/versions"),
        ("GET", f"/api/v1/files/{UNKNOWN}/content"),
        ("GET", f"/api/v1/orgs/{UNKNOWN}/members"),
        ("DELETE", f"/api/v1/auth/tokens/{UNKNOWN}"),
    ],
)
def test_unknown_ids_are_404(owner: Member, method: str, path: str) -> None:
    body = {"name": "x"} if method == "PATCH" else None
    response = owner.client.request(method, path, json=body, headers=owner.headers())
    assert_problem(response, 404, "not-found")
    assert response.json()["instance"] == path


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "%27%20OR%201=1", "0" * 33, "{}"])
def test_malformed_ids_are_422(owner: Member, services: Services, bad_id: str) -> None:
    uploaded(owner, owner.root_folder_id, "keep.txt", b"k")
    before = stored_state(services)
    for method, path in (
        ("GET", f"/api/v1/folders/{bad_id}"),
        ("GET", f"/api/v1/files/{bad_id}/content"),
        ("DELETE", f"/api/v1/files/{bad_id}"),
        ("PATCH", f"/api/v1/folders/{bad_id}"),
    ):
        response = owner.client.request(method, path, json={"name": "x"}, headers=owner.headers())
        body = assert_problem(response, 422, "invalid")
        assert body["errors"]
    assert stored_state(services) == before


def test_malformed_bodies_are_422(owner: Member, services: Services) -> None:
    folder = make_folder(owner, owner.root_folder_id, "Keep")
    before = stored_state(services)
    url = "/api/v1/folders"
    for content in (
        b"{not json",
        b"[]",
        b'{"name": 5, "parent_id": "x"}',
        b'{"name": "ok"}',
        b'{"name": "a\\ud800b", "parent_id": "%s"}' % folder["id"].encode(),
    ):
        response = owner.client.post(
            url, content=content, headers={**owner.headers(), "Content-Type": "application/json"}
        )
        assert_problem(response, 422, "invalid")
    assert stored_state(services) == before


def test_unknown_routes_and_methods(app_client: TestClient) -> None:
    assert_problem(app_client.get("/api/v1/nothing-here"), 404, "not-found")
    assert_problem(app_client.put("/api/v1/me"), 405, "method-not-allowed")


def test_a_bug_is_a_500_problem_without_details(services: Services) -> None:
    from studyshelf.app import create_app

    app = create_app(services=services)

    @app.get("/api/v1/explode")
    def explode() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/explode")
    body = assert_problem(response, 500, "internal")
    assert "secret internals" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "instance"}
