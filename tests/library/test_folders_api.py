"""Folders over the REST API: create, list with keyset pages, rename, move, delete, restore."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from studyshelf.services import Services
from tests.conftest import Member, World
from tests.library.support import assert_problem, make_folder, stored_state, uploaded

BAD_NAMES = [
    "a/b",
    "..",
    ".",
    "nul\x00byte",
    "line\nbreak",
    "bell\x07",
    "x" * 256,
    "é" * 128,
    "   ",
    "back\\slash",
    "rtl\u202eexe.pdf",
]


def children(member: Member, folder_id: object, **params: Any) -> dict[str, Any]:
    response = member.client.get(f"/api/v1/folders/{folder_id}/children", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def all_pages(member: Member, folder_id: object, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = children(member, folder_id, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def test_create_and_list_folder(owner: Member) -> None:
    created = owner.client.post(
        "/api/v1/folders", json={"name": "Biology", "parent_id": str(owner.root_folder_id)}, headers=owner.headers()
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["parent_id"] == str(owner.root_folder_id)
    assert [c["name"] for c in body["path"]] == ["Library", "Biology"]
    listing = owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").json()
    assert [item["name"] for item in listing["items"]] == ["Biology"]
    assert listing["items"][0]["kind"] == "folder"
    assert owner.client.get(f"/api/v1/folders/{body['id']}").json()["name"] == "Biology"


def test_names_are_normalised(owner: Member) -> None:
    folder = make_folder(owner, owner.root_folder_id, "  e\u0301tudes  ")
    assert folder["name"] == "\u00e9tudes"


@pytest.fixture
def populated(owner: Member) -> Member:
    """A root with five folders and seven files of assorted sizes, in a scrambled creation order."""
    for name in ["delta", "Alpha", "echo", "bravo", "Charlie"]:
        make_folder(owner, owner.root_folder_id, name)
    for name, size in [
        ("notes.txt", 30),
        ("Zeta.txt", 5),
        ("answers.txt", 30),
        ("b.txt", 1),
        ("Mike.txt", 300),
        ("kilo.txt", 30),
        ("c.txt", 0),
    ]:
        uploaded(owner, owner.root_folder_id, name, (name * 400).encode()[:size] or b"")
    return owner


def expected_order(items: list[dict[str, Any]], sort: str, order: str) -> list[str]:
    def key(item: dict[str, Any]) -> Any:
        return {"name": item["name"].casefold(), "size": item["size"] or 0, "updated_at": item["updated_at"]}[sort]

    folders = [i for i in items if i["kind"] == "folder"]
    files = [i for i in items if i["kind"] == "file"]
    result: list[str] = []
    for group in (folders, files):
        by_id = sorted(group, key=lambda i: uuid.UUID(i["id"]))
        result += [i["id"] for i in sorted(by_id, key=key, reverse=order == "desc")]
    return result


@pytest.mark.parametrize("sort", ["name", "size", "updated_at"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_pages_concatenate_to_the_sorted_listing(populated: Member, sort: str, order: str, limit: int) -> None:
    whole = children(populated, populated.root_folder_id, sort=sort, order=order, limit=500)
    assert whole["next_cursor"] is None
    assert len(whole["items"]) == 12
    assert [i["kind"] for i in whole["items"]] == ["folder"] * 5 + ["file"] * 7
    # Ties (equal sizes, every folder's size) fall back to the id, ascending, in both directions.
    assert [i["id"] for i in whole["items"]] == expected_order(whole["items"], sort, order)
    paged = all_pages(populated, populated.root_folder_id, sort=sort, order=order, limit=limit)
    assert [i["id"] for i in paged] == [i["id"] for i in whole["items"]]
    assert len({i["id"] for i in paged}) == len(paged)


def test_name_order_is_case_insensitive(populated: Member) -> None:
    names = [i["name"] for i in children(populated, populated.root_folder_id, sort="name")["items"]]
    assert names == [
        "Alpha",
        "bravo",
        "Charlie",
        "delta",
        "echo",
        "answers.txt",
        "b.txt",
        "c.txt",
        "kilo.txt",
        "Mike.txt",
        "notes.txt",
        "Zeta.txt",
    ]
    sizes = [i["size"] for i in children(populated, populated.root_folder_id, sort="size", order="desc")["items"]]
    assert sizes == [None] * 5 + [300, 30, 30, 30, 5, 1, 0]


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not base64 json"},
        {"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()},
        {"cursor": base64.urlsafe_b64encode(json.dumps([7, "x", str(uuid.uuid4())]).encode()).decode()},
        {"cursor": base64.urlsafe_b64encode(json.dumps([0, "x", "not-a-uuid"]).encode()).decode()},
        {"sort": "colour"},
        {"order": "sideways"},
        {"limit": 0},
        {"limit": 501},
        {"limit": "many"},
        {"cursor": "x" * 3000},
    ],
)
def test_bad_listing_parameters_are_422(owner: Member, params: dict[str, Any]) -> None:
    assert_problem(owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children", params=params), 422, "invalid")


@pytest.mark.parametrize(
    ("cursor_sort", "sort"),
    [("name", "updated_at"), ("name", "size"), ("size", "name"), ("size", "updated_at"), ("updated_at", "size")],
)
def test_a_cursor_from_another_sort_is_422_not_500(populated: Member, cursor_sort: str, sort: str) -> None:
    cursor = children(populated, populated.root_folder_id, sort=cursor_sort, limit=2)["next_cursor"]
    file_cursor = children(populated, populated.root_folder_id, sort=cursor_sort, limit=7)["next_cursor"]
    for value in (cursor, file_cursor):
        response = populated.client.get(
            f"/api/v1/folders/{populated.root_folder_id}/children", params={"sort": sort, "cursor": value}
        )
        assert_problem(response, 422, "invalid")


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_folder_names_are_refused(owner: Member, services: Services, name: str) -> None:
    make_folder(owner, owner.root_folder_id, "Existing")
    before = stored_state(services)
    response = owner.client.post(
        "/api/v1/folders", json={"name": name, "parent_id": str(owner.root_folder_id)}, headers=owner.headers()
    )
    assert_problem(response, 422, "invalid")
    assert stored_state(services) == before


def test_duplicate_folder_names(owner: Member, services: Services) -> None:
    make_folder(owner, owner.root_folder_id, "Biology")
    before = stored_state(services)
    for name in ("Biology", "biology", " BIOLOGY "):
        response = owner.client.post(
            "/api/v1/folders", json={"name": name, "parent_id": str(owner.root_folder_id)}, headers=owner.headers()
        )
        assert_problem(response, 409, "conflict")
    assert stored_state(services) == before
    renamed = owner.client.post(
        "/api/v1/folders",
        params={"on_conflict": "rename"},
        json={"name": "Biology", "parent_id": str(owner.root_folder_id)},
        headers=owner.headers(),
    )
    assert renamed.status_code == 201
    assert renamed.json()["name"] == "Biology (2)"
    third = owner.client.post(
        "/api/v1/folders",
        params={"on_conflict": "rename"},
        json={"name": "biology", "parent_id": str(owner.root_folder_id)},
        headers=owner.headers(),
    )
    assert third.json()["name"] == "biology (3)"


def test_a_folder_and_a_file_cannot_share_a_name(owner: Member) -> None:
    uploaded(owner, owner.root_folder_id, "Notes", b"plain")
    response = owner.client.post(
        "/api/v1/folders", json={"name": "notes", "parent_id": str(owner.root_folder_id)}, headers=owner.headers()
    )
    assert_problem(response, 409, "conflict")


def test_rename_folder(owner: Member, services: Services) -> None:
    biology = make_folder(owner, owner.root_folder_id, "Biology")
    make_folder(owner, owner.root_folder_id, "Chemistry")
    response = owner.client.patch(
        f"/api/v1/folders/{biology['id']}", json={"name": "Life sciences"}, headers=owner.headers()
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Life sciences"
    before = stored_state(services)
    assert_problem(
        owner.client.patch(f"/api/v1/folders/{biology['id']}", json={"name": "chemistry"}, headers=owner.headers()),
        409,
        "conflict",
    )
    assert_problem(
        owner.client.patch(f"/api/v1/folders/{biology['id']}", json={"name": "a/b"}, headers=owner.headers()),
        422,
        "invalid",
    )
    assert_problem(
        owner.client.patch(f"/api/v1/folders/{biology['id']}", json={}, headers=owner.headers()), 422, "invalid"
    )
    assert stored_state(services) == before
    # Renaming to a different case of its own name is fine.
    assert (
        owner.client.patch(
            f"/api/v1/folders/{biology['id']}", json={"name": "LIFE SCIENCES"}, headers=owner.headers()
        ).status_code
        == 200
    )


def test_root_folder_cannot_be_renamed_moved_or_deleted(owner: Member) -> None:
    other = make_folder(owner, owner.root_folder_id, "Other")
    root = owner.root_folder_id
    assert_problem(
        owner.client.patch(f"/api/v1/folders/{root}", json={"name": "Mine"}, headers=owner.headers()), 422, "invalid"
    )
    assert_problem(
        owner.client.patch(f"/api/v1/folders/{root}", json={"parent_id": other["id"]}, headers=owner.headers()),
        422,
        "invalid",
    )
    assert_problem(owner.client.delete(f"/api/v1/folders/{root}", headers=owner.headers()), 422, "invalid")


def test_move_folder(owner: Member) -> None:
    science = make_folder(owner, owner.root_folder_id, "Science")
    biology = make_folder(owner, owner.root_folder_id, "Biology")
    file = uploaded(owner, biology["id"], "cells.txt", b"mitochondria")
    moved = owner.client.patch(
        f"/api/v1/folders/{biology['id']}", json={"parent_id": science["id"]}, headers=owner.headers()
    )
    assert moved.status_code == 200
    assert [c["name"] for c in moved.json()["path"]] == ["Library", "Science", "Biology"]
    assert [i["name"] for i in children(owner, owner.root_folder_id)["items"]] == ["Science"]
    assert owner.client.get(f"/api/v1/files/{file['id']}/content").content == b"mitochondria"


def test_move_and_rename_in_one_request(owner: Member) -> None:
    science = make_folder(owner, owner.root_folder_id, "Science")
    biology = make_folder(owner, owner.root_folder_id, "Biology")
    response = owner.client.patch(
        f"/api/v1/folders/{biology['id']}", json={"parent_id": science["id"], "name": "Bio"}, headers=owner.headers()
    )
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["path"]] == ["Library", "Science", "Bio"]


def test_a_folder_cannot_move_into_its_own_subtree(owner: Member, services: Services) -> None:
    a = make_folder(owner, owner.root_folder_id, "A")
    b = make_folder(owner, a["id"], "B")
    c = make_folder(owner, b["id"], "C")
    before = stored_state(services)
    for target in (a, b, c):
        response = owner.client.patch(
            f"/api/v1/folders/{a['id']}", json={"parent_id": target["id"]}, headers=owner.headers()
        )
        assert_problem(response, 409, "conflict")
    assert stored_state(services) == before


def test_move_into_a_folder_with_the_same_name(owner: Member) -> None:
    science = make_folder(owner, owner.root_folder_id, "Science")
    make_folder(owner, science["id"], "Biology")
    biology = make_folder(owner, owner.root_folder_id, "Biology")
    url = f"/api/v1/folders/{biology['id']}"
    assert_problem(owner.client.patch(url, json={"parent_id": science["id"]}, headers=owner.headers()), 409, "conflict")
    moved = owner.client.patch(
        url, params={"on_conflict": "rename"}, json={"parent_id": science["id"]}, headers=owner.headers()
    )
    assert moved.json()["name"] == "Biology (2)"


def test_no_moves_across_organisations(world: World) -> None:
    north, south = world.org("north"), world.org("south")
    owner, outsider = world.member(north), world.member(south)
    folder = make_folder(owner, owner.root_folder_id, "Mine")
    response = owner.client.patch(
        f"/api/v1/folders/{folder['id']}", json={"parent_id": str(outsider.root_folder_id)}, headers=owner.headers()
    )
    assert_problem(response, 404, "not-found")
    assert_problem(outsider.client.get(f"/api/v1/folders/{folder['id']}"), 404, "not-found")
    assert_problem(outsider.client.get(f"/api/v1/folders/{owner.root_folder_id}/children"), 404, "not-found")


def test_delete_and_restore_a_folder_with_its_contents(owner: Member) -> None:
    biology = make_folder(owner, owner.root_folder_id, "Biology")
    inner = make_folder(owner, biology["id"], "Cells")
    file = uploaded(owner, inner["id"], "notes.txt", b"nucleus")
    assert owner.client.delete(f"/api/v1/folders/{biology['id']}", headers=owner.headers()).status_code == 204
    assert children(owner, owner.root_folder_id)["items"] == []
    for url in (
        f"/api/v1/folders/{biology['id']}",
        f"/api/v1/folders/{inner['id']}",
        f"/api/v1/files/{file['id']}",
        f"/api/v1/files/{file['id']}/content",
    ):
        assert_problem(owner.client.get(url), 404, "not-found")
    trash = owner.client.get(f"/api/v1/orgs/{owner.org_id}/trash").json()
    assert [(t["kind"], t["id"]) for t in trash] == [("folder", biology["id"])]

    restored = owner.client.post(f"/api/v1/folders/{biology['id']}/restore", headers=owner.headers())
    assert restored.status_code == 200
    assert owner.client.get(f"/api/v1/files/{file['id']}/content").content == b"nucleus"
    assert owner.client.get(f"/api/v1/orgs/{owner.org_id}/trash").json() == []


def test_restore_into_a_taken_name(owner: Member) -> None:
    old = make_folder(owner, owner.root_folder_id, "Biology")
    owner.client.delete(f"/api/v1/folders/{old['id']}", headers=owner.headers())
    make_folder(owner, owner.root_folder_id, "Biology")
    assert_problem(owner.client.post(f"/api/v1/folders/{old['id']}/restore", headers=owner.headers()), 409, "conflict")
    restored = owner.client.post(
        f"/api/v1/folders/{old['id']}/restore", params={"on_conflict": "rename"}, headers=owner.headers()
    )
    assert restored.json()["name"] == "Biology (2)"


def test_restore_needs_the_parent_back_first(owner: Member) -> None:
    outer = make_folder(owner, owner.root_folder_id, "Outer")
    inner = make_folder(owner, outer["id"], "Inner")
    owner.client.delete(f"/api/v1/folders/{inner['id']}", headers=owner.headers())
    owner.client.delete(f"/api/v1/folders/{outer['id']}", headers=owner.headers())
    assert_problem(
        owner.client.post(f"/api/v1/folders/{inner['id']}/restore", headers=owner.headers()), 409, "conflict"
    )
    assert owner.client.post(f"/api/v1/folders/{outer['id']}/restore", headers=owner.headers()).status_code == 200
    assert owner.client.post(f"/api/v1/folders/{inner['id']}/restore", headers=owner.headers()).status_code == 200


def test_restoring_a_live_folder_is_404(owner: Member) -> None:
    folder = make_folder(owner, owner.root_folder_id, "Live")
    assert_problem(
        owner.client.post(f"/api/v1/folders/{folder['id']}/restore", headers=owner.headers()), 404, "not-found"
    )
