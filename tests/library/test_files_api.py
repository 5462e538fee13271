"""Files over the REST API: upload, sniffing, limits, dedupe, versions, rename, move, delete, restore."""

from __future__ import annotations

import hashlib
import threading

import pytest
from sqlalchemy import func, select

from studyshelf.library.models import Blob
from studyshelf.partners.models import Role
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.library.support import assert_problem, make_folder, stored_state, tiny_png, upload, uploaded

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def test_upload_returns_the_file(owner: Member) -> None:
    data = b"Photosynthesis turns light into sugar.\n"
    file = uploaded(owner, owner.root_folder_id, "notes.txt", data)
    assert file["name"] == "notes.txt"
    assert file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["content_type"] == "text/plain"
    assert file["category"] == "text"
    assert file["version"] == 1
    assert file["folder_id"] == str(owner.root_folder_id)
    assert owner.client.get(file["content_url"]).content == data
    assert owner.client.get(f"/api/v1/files/{file['id']}").json() == file


def test_a_name_field_overrides_the_filename(owner: Member) -> None:
    response = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("blob", b"abc")},
        data={"name": "Renamed.txt"},
        headers=owner.headers(),
    )
    assert response.status_code == 201
    assert response.json()["name"] == "Renamed.txt"


@pytest.mark.parametrize(
    ("name", "data", "claimed", "expected"),
    [
        ("pixel.png", HTML, "image/png", "text/html"),
        ("pixel.txt", tiny_png(), "text/plain", "image/png"),
        ("paper.docx", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/msword", "application/pdf"),
        (
            "drawing.png",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/png",
            "image/svg+xml",
        ),
        ("data.csv", b"a,b\n1,2\n", "application/octet-stream", "text/csv"),
        ("random.bin", bytes(range(256)), "text/plain", "application/octet-stream"),
    ],
)
def test_content_type_comes_from_the_bytes(owner: Member, name: str, data: bytes, claimed: str, expected: str) -> None:
    file = uploaded(owner, owner.root_folder_id, name, data, content_type=claimed)
    assert file["content_type"] == expected
    assert owner.client.get(file["content_url"]).headers["content-type"].split(";")[0] == expected


def test_html_claiming_to_be_png_is_served_as_a_sandboxed_attachment(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "cat.png", HTML, content_type="image/png")
    response = owner.client.get(file["content_url"])
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "name",
    ["a/b.txt", "../../etc/passwd", "..", ".", "nul\x00.txt", "ctl\x1b.txt", "x" * 252 + ".txt", "\u202etxt.exe"],
)
def test_bad_file_names_are_refused_and_nothing_changes(owner: Member, services: Services, name: str) -> None:
    uploaded(owner, owner.root_folder_id, "keep.txt", b"kept")
    before = stored_state(services)
    response = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files={"file": ("upload.bin", b"new bytes")},
        data={"name": name},
        headers=owner.headers(),
    )
    assert_problem(response, 422, "invalid")
    # The bytes are published only once the rows are valid, so a refused name leaves no orphan blob either.
    assert stored_state(services) == before


def test_duplicate_file_names(owner: Member, services: Services) -> None:
    uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4 first")
    before = stored_state(services)
    assert_problem(upload(owner, owner.root_folder_id, "NOTES.pdf", b"%PDF-1.4 second"), 409, "conflict")
    assert (stored_state(services).files, stored_state(services).versions) == (before.files, before.versions)
    second = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4 second", on_conflict="rename")
    third = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4 third", on_conflict="rename")
    dotfile = uploaded(owner, owner.root_folder_id, ".env", b"A=1")
    dotfile2 = uploaded(owner, owner.root_folder_id, ".env", b"A=2", on_conflict="rename")
    assert (second["name"], third["name"], dotfile["name"], dotfile2["name"]) == (
        "notes (2).pdf",
        "notes (3).pdf",
        ".env",
        ".env (2)",
    )


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "multipart/form-data; boundary=XYZ"}, b"this is not multipart at all"),
        (
            {"Content-Type": "multipart/form-data; boundary=XYZ"},
            b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\ntruncated',
        ),
        ({"Content-Type": "multipart/form-data; boundary=XYZ"}, b"--XYZ\r\nno headers end\r\n--XYZ--"),
        ({"Content-Type": "multipart/form-data"}, b"--XYZ--\r\n"),
        ({"Content-Type": "application/json"}, b'{"file": "abc"}'),
        ({"Content-Type": "text/plain"}, b"abc"),
        ({}, b""),
    ],
)
def test_malformed_uploads_are_422_and_leave_nothing(
    owner: Member, services: Services, headers: dict[str, str], body: bytes
) -> None:
    uploaded(owner, owner.root_folder_id, "keep.txt", b"kept")
    before = stored_state(services)
    response = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files", content=body, headers={**owner.headers(), **headers}
    )
    assert_problem(response, 422, "invalid")
    assert stored_state(services) == before


def test_a_form_without_a_file_part_is_422(owner: Member, services: Services) -> None:
    before = stored_state(services)
    no_file = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        data={"name": "x.txt"},
        files={"other": ("x.txt", b"abc")},
        headers=owner.headers(),
    )
    assert_problem(no_file, 422, "invalid")
    assert stored_state(services) == before


def test_two_files_in_one_request_are_422(owner: Member, services: Services) -> None:
    before = stored_state(services)
    response = owner.client.post(
        f"/api/v1/folders/{owner.root_folder_id}/files",
        files=[("file", ("a.txt", b"first")), ("file", ("b.txt", b"second"))],
        headers=owner.headers(),
    )
    assert_problem(response, 422, "invalid")
    assert stored_state(services) == before


def test_identical_bytes_are_stored_once(owner: Member, services: Services) -> None:
    data = b"the same lecture notes"
    a = uploaded(owner, owner.root_folder_id, "a.txt", data)
    b = uploaded(owner, owner.root_folder_id, "b.txt", data)
    assert a["sha256"] == b["sha256"]
    state = stored_state(services)
    assert state.blob_rows == state.blob_digests == [hashlib.sha256(data).hexdigest()]


@pytest.mark.slow
def test_concurrent_identical_uploads_are_stored_once(world: World, services: Services) -> None:
    org = world.org()
    members = [world.member(org, Role.EDITOR) for _ in range(6)]
    data = b"%PDF-1.4\n" + b"shared handout " * 5000
    results: list[int] = []
    barrier = threading.Barrier(len(members))

    def send(index: int, member: Member) -> None:
        barrier.wait()
        results.append(upload(member, member.root_folder_id, f"copy {index}.pdf", data).status_code)

    threads = [threading.Thread(target=send, args=(i, m)) for i, m in enumerate(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [201] * len(members)
    state = stored_state(services)
    assert state.blob_rows == state.blob_digests == [hashlib.sha256(data).hexdigest()]
    assert len(state.files) == len(members)
    assert state.tmp_files == []
    with services.read_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Blob)) == 1


def test_versions(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "syllabus.txt", b"version one")
    response = owner.client.post(
        f"/api/v1/files/{file['id']}/versions", files={"file": ("whatever.bin", tiny_png())}, headers=owner.headers()
    )
    assert response.status_code == 201, response.text
    v2 = response.json()
    assert (v2["number"], v2["content_type"], v2["size"]) == (2, "image/png", len(tiny_png()))

    current = owner.client.get(f"/api/v1/files/{file['id']}").json()
    assert (current["version"], current["name"], current["content_type"]) == (2, "syllabus.txt", "image/png")
    assert owner.client.get(current["content_url"]).content == tiny_png()

    versions = owner.client.get(f"/api/v1/files/{file['id']}/versions").json()
    assert [v["number"] for v in versions] == [2, 1]
    old = owner.client.get(versions[1]["content_url"])
    assert old.status_code == 200
    assert old.content == b"version one"
    assert old.headers["etag"] == f'"{hashlib.sha256(b"version one").hexdigest()}"'
    assert "immutable" in old.headers["cache-control"]
    assert owner.client.get(versions[0]["content_url"]).content == tiny_png()


def test_a_version_of_another_file_is_404(owner: Member) -> None:
    a = uploaded(owner, owner.root_folder_id, "a.txt", b"a")
    b = uploaded(owner, owner.root_folder_id, "b.txt", b"b")
    version_of_b = owner.client.get(f"/api/v1/files/{b['id']}/versions").json()[0]["id"]
    assert_problem(owner.client.get(f"/api/v1/files/{a['id']}/versions/{version_of_b}/content"), 404, "not-found")


def test_rename_and_move_a_file(owner: Member, services: Services) -> None:
    folder = make_folder(owner, owner.root_folder_id, "Week 1")
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"n")
    uploaded(owner, owner.root_folder_id, "other.txt", b"o")
    url = f"/api/v1/files/{file['id']}"
    renamed = owner.client.patch(url, json={"name": "Lecture notes.txt"}, headers=owner.headers())
    assert renamed.json()["name"] == "Lecture notes.txt"
    before = stored_state(services)
    assert_problem(owner.client.patch(url, json={"name": "OTHER.txt"}, headers=owner.headers()), 409, "conflict")
    assert_problem(owner.client.patch(url, json={"name": "../x"}, headers=owner.headers()), 422, "invalid")
    assert_problem(owner.client.patch(url, json={}, headers=owner.headers()), 422, "invalid")
    assert_problem(owner.client.patch(url, json={"folder_id": "nope"}, headers=owner.headers()), 422, "invalid")
    assert stored_state(services) == before
    moved = owner.client.patch(url, json={"folder_id": folder["id"]}, headers=owner.headers())
    assert moved.json()["folder_id"] == folder["id"]
    assert [i["name"] for i in owner.client.get(f"/api/v1/folders/{folder['id']}/children").json()["items"]] == [
        "Lecture notes.txt"
    ]


def test_delete_and_restore_a_file(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"keep me")
    assert owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers()).status_code == 204
    assert_problem(owner.client.get(f"/api/v1/files/{file['id']}"), 404, "not-found")
    assert_problem(owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers()), 404, "not-found")
    trash = owner.client.get(f"/api/v1/orgs/{owner.org_id}/trash").json()
    assert [(t["kind"], t["name"], t["parent_id"]) for t in trash] == [("file", "notes.txt", str(owner.root_folder_id))]
    uploaded(owner, owner.root_folder_id, "notes.txt", b"a newer file with the same name")
    assert_problem(owner.client.post(f"/api/v1/files/{file['id']}/restore", headers=owner.headers()), 409, "conflict")
    restored = owner.client.post(
        f"/api/v1/files/{file['id']}/restore", params={"on_conflict": "rename"}, headers=owner.headers()
    )
    assert restored.json()["name"] == "notes (2).txt"
    assert owner.client.get(restored.json()["content_url"]).content == b"keep me"


def test_viewers_read_but_do_not_write(world: World) -> None:
    org = world.org()
    editor, viewer = world.member(org, Role.EDITOR), world.member(org, Role.VIEWER)
    file = uploaded(editor, editor.root_folder_id, "notes.txt", b"n")
    assert viewer.client.get(file["content_url"]).content == b"n"
    assert_problem(upload(viewer, viewer.root_folder_id, "mine.txt", b"m"), 403, "permission-denied")
    assert_problem(
        viewer.client.delete(f"/api/v1/files/{file['id']}", headers=viewer.headers()), 403, "permission-denied"
    )
    assert_problem(
        viewer.client.patch(f"/api/v1/files/{file['id']}", json={"name": "x"}, headers=viewer.headers()),
        403,
        "permission-denied",
    )
    assert_problem(
        viewer.client.post(
            "/api/v1/folders", json={"name": "x", "parent_id": str(viewer.root_folder_id)}, headers=viewer.headers()
        ),
        403,
        "permission-denied",
    )


def test_other_organisations_see_nothing(world: World) -> None:
    north, south = world.org("north"), world.org("south")
    owner, outsider = world.member(north), world.member(south)
    file = uploaded(owner, owner.root_folder_id, "secret.txt", b"s")
    for url in (
        f"/api/v1/files/{file['id']}",
        file["content_url"],
        f"/api/v1/files/{file['id']}/versions",
        f"/api/v1/orgs/{owner.org_id}/trash",
    ):
        assert_problem(outsider.client.get(url), 404, "not-found")
    assert_problem(upload(outsider, owner.root_folder_id, "x.txt", b"x"), 404, "not-found")
    assert_problem(outsider.client.delete(f"/api/v1/files/{file['id']}", headers=outsider.headers()), 404, "not-found")
