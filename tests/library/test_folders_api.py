from __future__ import annotations

from tests.conftest import Member


def test_create_and_list_folder(owner: Member) -> None:
    created = owner.client.post("/api/v1/folders", json={"name": "Biology", "parent_id": str(owner.root_folder_id)}, headers=owner.headers())
    assert created.status_code == 201, created.text
    listing = owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").json()
    assert [item["name"] for item in listing["items"]] == ["Biology"]
