"""The server-rendered pages: signed-in rendering, redirects, CSRF, fragments and security headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from studyshelf.library.upload import FILE_FIELD
from tests.conftest import PASSWORD, Member, World
from tests.html import has_attr, parse_html
from tests.web.inline_scripts import assert_no_inline_script_but_the_import_map

HTML = {"Accept": "text/html,application/xhtml+xml"}
HTMX = {"HX-Request": "true"}


def _csrf(html: str) -> str:
    return parse_html(html).attr('input[name="csrf_token"]', "value")


def _upload(member: Member, folder_id: object, name: str, data: bytes) -> str:
    response = member.client.post(
        f"/api/v1/folders/{folder_id}/files?on_conflict=rename",
        files={FILE_FIELD: (name, data)},
        headers=member.headers(),
    )
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


def _folder(member: Member, name: str) -> str:
    response = member.client.post(
        "/api/v1/folders", json={"name": name, "parent_id": str(member.root_folder_id)}, headers=member.headers()
    )
    assert response.status_code == 201, response.text
    folder_id: str = response.json()["id"]
    return folder_id


def test_home_redirects_to_the_root_folder(owner: Member) -> None:
    response = owner.client.get("/", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/library/{owner.root_folder_id}"


def test_folder_page_lists_children_with_breadcrumbs(owner: Member) -> None:
    folder_id = _folder(owner, "Biology")
    _upload(owner, folder_id, "notes.txt", b"cells and membranes\n")
    page = owner.client.get(f"/library/{folder_id}", headers=HTML)
    assert page.status_code == 200
    shown = parse_html(page)
    [breadcrumb] = shown.by_role("navigation", "Breadcrumb")
    assert breadcrumb.select_one(f'a[href="/library/{owner.root_folder_id}"]')
    assert "notes.txt" in page.text
    assert shown.select_one("[data-dropzone]")
    assert shown.attr('meta[name="csrf-token"]', "content") == owner.csrf


def test_sorting_and_load_more(owner: Member) -> None:
    for n in range(55):
        _upload(owner, owner.root_folder_id, f"file-{n:02}.txt", b"x" * (n + 1))
    page = owner.client.get(f"/library/{owner.root_folder_id}?sort=size&order=desc", headers=HTML)
    assert page.status_code == 200
    assert page.text.index("file-54.txt") < page.text.index("file-53.txt")
    sorted_page = parse_html(page)
    assert sorted_page.select_one('[aria-sort="descending"]')
    [cursor] = parse_qs(urlsplit(sorted_page.attr('a[href*="cursor="]', "href")).query)["cursor"]
    more = owner.client.get(f"/library/{owner.root_folder_id}?sort=size&order=desc&cursor={cursor}", headers=HTMX)
    assert more.status_code == 200
    assert not parse_html(more).is_full_document()
    assert "file-00.txt" in more.text
    assert "file-54.txt" not in more.text


def test_new_folder_rename_move_delete_and_restore(owner: Member) -> None:
    root = owner.root_folder_id
    headers = {**HTMX, **owner.headers()}
    created = owner.client.post(f"/library/{root}/folders", data={"name": "Week 1"}, headers=headers)
    assert created.status_code == 200, created.text
    assert parse_html(created).select_one("#listing")
    assert "Week 1" in created.text
    assert "toast" in created.headers["hx-trigger"]
    folder_id = _folder(owner, "Archive")
    file_id = _upload(owner, root, "slides.txt", b"slides")
    renamed = owner.client.post(
        f"/library/{root}/rename", data={"kind": "file", "item_id": file_id, "name": "intro.txt"}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert "intro.txt" in renamed.text
    moved = owner.client.post(
        f"/library/{root}/move", data={"kind": "file", "item_id": file_id, "target_id": folder_id}, headers=headers
    )
    assert moved.status_code == 200
    assert "intro.txt" not in moved.text
    deleted = owner.client.post(
        f"/library/{root}/delete", data={"kind": "folder", "item_id": folder_id}, headers=headers
    )
    assert deleted.status_code == 200
    assert "Archive" not in deleted.text
    trash = owner.client.get("/trash", headers=HTML)
    assert "Archive" in trash.text
    restored = owner.client.post("/trash/restore", data={"kind": "folder", "item_id": folder_id}, headers=headers)
    assert restored.status_code == 200
    assert "Restored" in restored.text
    assert "Archive" in owner.client.get(f"/library/{root}", headers=HTML).text


def test_plain_form_posts_redirect_back(owner: Member) -> None:
    page = owner.client.get(f"/library/{owner.root_folder_id}", headers=HTML)
    response = owner.client.post(
        f"/library/{owner.root_folder_id}/folders",
        data={"name": "Plain", "csrf_token": _csrf(page.text)},
        headers=HTML,
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/library/{owner.root_folder_id}"


def test_conflict_in_htmx_action_is_a_problem(owner: Member) -> None:
    _folder(owner, "Same")
    response = owner.client.post(
        f"/library/{owner.root_folder_id}/folders", data={"name": "same"}, headers={**HTMX, **owner.headers()}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("name", "data", "preview"),
    [
        ("clip.txt", b"plain words\n", "iframe"),
        ("image.png", bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"), "img"),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "[data-pdf-src]"),
        ("data.bin", b"\x00\x01\x02\x03", ':-soup-contains-own("No preview")'),
    ],
)
def test_file_page_previews_and_versions(owner: Member, name: str, data: bytes, preview: str) -> None:
    file_id = _upload(owner, owner.root_folder_id, name, data)
    page = owner.client.get(f"/files/{file_id}", headers=HTML)
    assert page.status_code == 200, page.text
    shown = parse_html(page)
    assert shown.select_one(preview)
    assert "Version history" in page.text
    assert shown.select_one(f'a[href^="/api/v1/files/{file_id}/versions/"]')
    assert shown.select_one('a[href$="?download=1"]')


def test_media_preview_uses_the_content_url(owner: Member) -> None:
    mp3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
    file_id = _upload(owner, owner.root_folder_id, "talk.mp3", mp3)
    page = owner.client.get(f"/files/{file_id}", headers=HTML)
    player = parse_html(page).one("audio.player")
    assert has_attr(player, "controls")
    assert (player["preload"], player["src"]) == ("metadata", f"/api/v1/files/{file_id}/content")


def test_tokens_page_creates_shows_once_and_revokes(owner: Member) -> None:
    headers = {**HTMX, **owner.headers()}
    assert owner.client.get("/settings/tokens", headers=HTML).status_code == 200
    created = owner.client.post(
        "/settings/tokens", data={"name": "sync script", "org_id": str(owner.org_id), "role": "viewer"}, headers=headers
    )
    assert created.status_code == 200, created.text
    token = parse_html(created).attr('[value^="ss_"]', "value")
    assert owner.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = owner.client.get("/settings/tokens", headers=HTML)
    assert "sync script" in listing.text
    assert token not in listing.text
    token_id = owner.client.get("/api/v1/auth/tokens").json()[0]["id"]
    revoked = owner.client.post(f"/settings/tokens/{token_id}/revoke", headers=headers)
    assert revoked.status_code == 200
    assert owner.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_org_switch(world: World, owner: Member) -> None:
    from studyshelf.core.db import unit_of_work
    from studyshelf.library.folders import get_root_folder
    from studyshelf.partners import service as partners
    from studyshelf.partners.models import Organization, OrgKind, Role, User

    second = world.org("riverside", kind=OrgKind.PARTNER)
    with unit_of_work(world.services.write_sessions) as db:
        user = db.get(User, owner.user_id)
        assert user is not None
        partners.add_member(db, user=user, org=db.get(Organization, second.id) or second, role=Role.EDITOR)
        second_root = get_root_folder(db, org_id=second.id).id
    page = owner.client.get(f"/library/{owner.root_folder_id}", headers=HTML)
    assert parse_html(page).select_one('[name="org_id"]')
    switched = owner.client.post(
        "/orgs/switch", data={"org_id": str(second.id), "csrf_token": _csrf(page.text)}, follow_redirects=False
    )
    assert switched.status_code == 303
    home = owner.client.get("/", headers=HTML, follow_redirects=False)
    assert home.headers["location"] == f"/library/{second_root}"


def test_unauthenticated_html_get_redirects_to_login(app_client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(app_client, TestClient)
    for path in ("/", "/trash", "/settings/tokens", "/library/00000000-0000-0000-0000-000000000000"):
        response = app_client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login")
    assert app_client.get("/trash", headers=HTML, follow_redirects=False).headers["location"] == "/login?next=%2Ftrash"
    htmx = app_client.get("/trash", headers={**HTML, **HTMX}, follow_redirects=False)
    assert htmx.headers["hx-redirect"].startswith("/login")
    api = app_client.get("/api/v1/me", headers=HTML)
    assert api.status_code == 401


def test_login_form_signs_in_and_out(world: World) -> None:
    from fastapi.testclient import TestClient

    org = world.org()
    member = world.member(org)
    client = TestClient(world.app, base_url="http://testserver")
    form = client.get("/login?next=/trash", headers=HTML)
    assert form.status_code == 200
    assert parse_html(form).attr('input[name="next"]', "value") == "/trash"
    wrong = client.post(
        "/login", data={"email": member.email, "password": "not it at all", "next": "/trash"}, headers=HTML
    )
    assert wrong.status_code == 401
    assert "not correct" in wrong.text
    ok = client.post(
        "/login", data={"email": member.email, "password": PASSWORD, "next": "/trash"}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert ok.headers["location"] == "/trash"
    trash = client.get("/trash", headers=HTML)
    assert trash.status_code == 200
    out = client.post("/logout", data={"csrf_token": _csrf(trash.text)}, headers=HTML, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/trash", headers=HTML, follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(world: World) -> None:
    from fastapi.testclient import TestClient

    member = world.member(world.org())
    client = TestClient(world.app, base_url="http://testserver")
    response = client.post(
        "/login", data={"email": member.email, "password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_html_form_without_csrf_is_refused(owner: Member) -> None:
    response = owner.client.post(f"/library/{owner.root_folder_id}/folders", data={"name": "Sneaky"}, headers=HTML)
    assert response.status_code == 403
    assert "text/html" in response.headers["content-type"]
    assert "Sneaky" not in owner.client.get(f"/library/{owner.root_folder_id}", headers=HTML).text
    wrong = owner.client.post("/settings/tokens", data={"name": "x", "csrf_token": "forged"}, headers=HTML)
    assert wrong.status_code == 403


def test_viewer_sees_no_write_controls(world: World) -> None:
    from studyshelf.partners.models import Role

    org = world.org()
    viewer = world.member(org, role=Role.VIEWER)
    page = viewer.client.get(f"/library/{viewer.root_folder_id}", headers=HTML)
    assert page.status_code == 200
    assert parse_html(page).select_one("[data-dropzone]") is None
    assert "New folder" not in page.text


def test_error_pages_are_friendly(owner: Member) -> None:
    response = owner.client.get("/library/00000000-0000-0000-0000-000000000000", headers=HTML)
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "Go to your library" in response.text
    assert "StudyShelf" in response.text


@pytest.mark.parametrize("path", ["/login", "/api/docs"])
def test_security_headers(app_client: object, path: str) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(app_client, TestClient)
    response = app_client.get(path, headers=HTML)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert_no_inline_script_but_the_import_map(response, path)
    assert parse_html(response).select("[style]") == []
    assert "cdn" not in response.text.lower()


def test_signed_in_pages_have_no_inline_script_or_style(owner: Member) -> None:
    file_id = _upload(owner, owner.root_folder_id, "a.txt", b"a")
    for path in (f"/library/{owner.root_folder_id}", f"/files/{file_id}", "/trash", "/settings/tokens"):
        response = owner.client.get(path, headers=HTML)
        assert_no_inline_script_but_the_import_map(response, path)
        shown = parse_html(response)
        assert shown.select("[style]") == [], path
        assert [name for tag in shown.select("*") for name in tag.attrs if name.startswith("hx-on")] == [], path


def test_vendored_assets_are_served(app_client: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(app_client, TestClient)
    for path in (
        "/static/vendor/htmx.org-2.0.11/htmx.min.js",
        "/static/vendor/pdfjs-dist-6.5.438/pdf.min.mjs",
        "/static/vendor/pdfjs-dist-6.5.438/pdf.worker.min.mjs",
        "/static/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js",
        "/static/css/app.css",
        "/static/js/app.js",
        "/static/img/icons.svg",
    ):
        assert app_client.get(path).status_code == 200, path
