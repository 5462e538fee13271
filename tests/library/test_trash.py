"""The trash: listing, retention, and the purge job that deletes rows and then unreferenced bytes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.library.jobs import purge_trash
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.services import Services
from tests.conftest import Member
from tests.library.support import assert_problem, make_folder, stored_state, uploaded


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def backdate(services: Services, model: type[File] | type[Folder], item_id: str, days: int) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.execute(
            update(model).where(model.id == uuid.UUID(item_id)).values(deleted_at=utcnow() - timedelta(days=days))
        )


def test_trash_lists_what_was_deleted_with_its_purge_date(owner: Member, services: Services) -> None:
    folder = make_folder(owner, owner.root_folder_id, "Old")
    file = uploaded(owner, owner.root_folder_id, "old.txt", b"o")
    owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers())
    owner.client.delete(f"/api/v1/folders/{folder['id']}", headers=owner.headers())
    trash = owner.client.get(f"/api/v1/orgs/{owner.org_id}/trash").json()
    assert [(t["kind"], t["name"]) for t in trash] == [("folder", "Old"), ("file", "old.txt")]  # newest first
    for item in trash:
        deleted, purge = item["deleted_at"], item["purge_at"]
        assert abs(
            (_parse(purge) - _parse(deleted)) - timedelta(days=services.settings.trash_retention_days)
        ) < timedelta(seconds=1)
    assert_problem(owner.client.get(f"/api/v1/orgs/{uuid.uuid4()}/trash"), 404, "not-found")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_purge_removes_old_trash_and_only_unreferenced_bytes(owner: Member, services: Services) -> None:
    shared, lonely, nested, deeper, recent = b"shared bytes", b"only in b", b"in d", b"in e", b"recently deleted"
    old_version, new_version = b"first draft", b"second draft"
    a = uploaded(owner, owner.root_folder_id, "a.txt", shared)
    b = uploaded(owner, owner.root_folder_id, "b.txt", lonely)
    c = uploaded(owner, owner.root_folder_id, "c.txt", shared)
    old = make_folder(owner, owner.root_folder_id, "Old")
    d = uploaded(owner, old["id"], "d.txt", nested)
    sub = make_folder(owner, old["id"], "Sub")
    e = uploaded(owner, sub["id"], "e.txt", deeper)
    f = uploaded(owner, owner.root_folder_id, "f.txt", old_version)
    owner.client.post(
        f"/api/v1/files/{f['id']}/versions", files={"file": ("f.txt", new_version)}, headers=owner.headers()
    )
    g = uploaded(owner, owner.root_folder_id, "g.txt", recent)
    for file in (b, c, g):
        assert owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers()).status_code == 204
    assert owner.client.delete(f"/api/v1/folders/{old['id']}", headers=owner.headers()).status_code == 204
    backdate(services, File, b["id"], 31)
    backdate(services, File, c["id"], 31)
    backdate(services, Folder, old["id"], 45)

    assert purge_trash(services) == (3, 3)

    with services.read_sessions() as db:
        files = set(map(str, db.scalars(select(File.id))))
        folders = set(map(str, db.scalars(select(Folder.id))))
        version_files = set(map(str, db.scalars(select(FileVersion.file_id))))
    assert files == {a["id"], f["id"], g["id"]}
    assert version_files == files
    assert folders == {str(owner.root_folder_id)}
    assert not {d["id"], e["id"], sub["id"]} & (files | folders)
    state = stored_state(services)
    assert (
        state.blob_rows == state.blob_digests == sorted(digest(x) for x in (shared, old_version, new_version, recent))
    )

    assert owner.client.get(a["content_url"]).content == shared
    versions = owner.client.get(f"/api/v1/files/{f['id']}/versions").json()
    assert owner.client.get(versions[-1]["content_url"]).content == old_version
    assert [t["id"] for t in owner.client.get(f"/api/v1/orgs/{owner.org_id}/trash").json()] == [g["id"]]
    assert_problem(owner.client.post(f"/api/v1/files/{b['id']}/restore", headers=owner.headers()), 404, "not-found")

    # Nothing else is old enough; a second run changes nothing.
    before = stored_state(services)
    assert purge_trash(services) == (0, 0)
    assert stored_state(services) == before
    # With no retention at all, the recent deletion goes too.
    assert purge_trash(services, retention_days=0) == (1, 1)
    assert digest(recent) not in stored_state(services).blob_digests
    assert owner.client.get(a["content_url"]).content == shared


def test_purge_keeps_bytes_a_live_file_shares_with_a_purged_one(owner: Member, services: Services) -> None:
    data = b"same handout"
    keep = uploaded(owner, owner.root_folder_id, "keep.txt", data)
    gone = uploaded(owner, owner.root_folder_id, "gone.txt", data)
    owner.client.delete(f"/api/v1/files/{gone['id']}", headers=owner.headers())
    assert purge_trash(services, retention_days=0) == (1, 0)
    assert stored_state(services).blob_digests == [digest(data)]
    assert owner.client.get(keep["content_url"]).content == data
