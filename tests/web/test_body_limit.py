"""Issue 13.6: JSON and form bodies are capped while they stream in; uploads keep their own limit."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from studyshelf.partners.models import LoginFailure
from studyshelf.services import Services
from tests.conftest import Member
from tests.library.support import assert_problem, uploaded

MiB = 1024 * 1024
HTML = {"Accept": "text/html,application/xhtml+xml"}


def chunks(head: bytes, *, total: int, filler: bytes = b" ") -> Iterator[bytes]:
    """A body of `total` bytes sent in 64 KiB pieces without a Content-Length (chunked)."""
    yield head
    sent = len(head)
    while sent < total:
        piece = filler * min(64 * 1024, total - sent)
        sent += len(piece)
        yield piece


def failures(services: Services) -> int:
    with services.read_sessions() as db:
        return db.scalar(select(func.count()).select_from(LoginFailure)) or 0


def test_a_chunked_login_body_over_the_cap_is_refused_before_the_handler(
    app_client: TestClient, services: Services
) -> None:
    # Valid JSON (trailing spaces are allowed): had the handler run, it would have recorded a failed sign-in.
    body = chunks(b'{"email": "someone@example.test", "password": "wrong password"}', total=3 * MiB)
    response = app_client.post("/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "too-large")
    assert failures(services) == 0

    # The same body under the cap reaches the handler.
    small = chunks(b'{"email": "someone@example.test", "password": "wrong password"}', total=MiB // 2)
    response = app_client.post("/api/v1/auth/login", content=small, headers={"Content-Type": "application/json"})
    assert_problem(response, 401, "not-authenticated")
    assert failures(services) > 0


def test_a_declared_content_length_over_the_cap_is_refused(app_client: TestClient, services: Services) -> None:
    body = b'{"email": "someone@example.test", "password": "wrong password"}'.ljust(2 * MiB)
    response = app_client.post("/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 413, "too-large")
    assert failures(services) == 0
    # Refused before routing: even where no route is.
    assert_problem(app_client.post("/api/v1/nowhere", content=body), 413, "too-large")
    # A multipart body waits for its route: only an upload lifts the cap.
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    assert_problem(app_client.post("/api/v1/auth/login", content=body, headers=multipart), 413, "too-large")
    assert failures(services) == 0


def test_an_html_form_over_the_cap_is_refused(app_client: TestClient, services: Services) -> None:
    body = chunks(b"email=someone%40example.test&password=wrong+password&pad=", total=2 * MiB, filler=b"x")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **HTML}
    response = app_client.post("/login", content=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert failures(services) == 0


def test_a_signed_in_json_write_over_the_cap_is_refused(owner: Member) -> None:
    head = f'{{"name": "Huge", "parent_id": "{owner.root_folder_id}"}}'.encode()
    response = owner.client.post(
        "/api/v1/folders",
        content=chunks(head, total=2 * MiB),
        headers={"Content-Type": "application/json", **owner.headers()},
    )
    assert_problem(response, 413, "too-large")
    children = owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").json()
    assert "Huge" not in str(children)


def test_an_upload_larger_than_the_body_cap_still_works(owner: Member, services: Services) -> None:
    assert services.settings.max_body_bytes == MiB < services.settings.max_upload_bytes
    data = bytes(range(256)) * (3 * MiB // 256)
    file = uploaded(owner, owner.root_folder_id, "big.bin", data)
    assert file["size"] == len(data)
    content = owner.client.get(f"/api/v1/files/{file['id']}/content")
    assert content.status_code == 200
    assert content.content == data
    version = owner.client.post(
        f"/api/v1/files/{file['id']}/versions",
        files={"file": ("big.bin", data[::-1], "application/octet-stream")},
        headers=owner.headers(),
    )
    assert version.status_code == 201, version.text
