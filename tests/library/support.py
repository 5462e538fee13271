"""Helpers for library and delivery tests: uploads, problem checks, and a snapshot of everything stored."""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from studyshelf.library.models import Blob, File, FileVersion, Folder
from studyshelf.services import Services
from studyshelf.storage.local import LocalBlobStore
from studyshelf.web.errors import PROBLEM_BASE
from tests.conftest import Member


def tiny_png() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def upload(
    member: Member,
    folder_id: uuid.UUID | str,
    name: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    on_conflict: str | None = None,
) -> httpx.Response:
    params = {"on_conflict": on_conflict} if on_conflict else None
    response: httpx.Response = member.client.post(
        f"/api/v1/folders/{folder_id}/files",
        files={"file": (name, data, content_type)},
        headers=member.headers(),
        params=params,
    )
    return response


def uploaded(member: Member, folder_id: uuid.UUID | str, name: str, data: bytes, **kwargs: Any) -> dict[str, Any]:
    response = upload(member, folder_id, name, data, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_folder(member: Member, parent_id: uuid.UUID | str, name: str) -> dict[str, Any]:
    response = member.client.post(
        "/api/v1/folders", json={"name": name, "parent_id": str(parent_id)}, headers=member.headers()
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with the stable type for `slug`, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    assert body["title"]
    assert "Traceback" not in response.text
    return body


@dataclass(frozen=True)
class StoredState:
    """Everything the library keeps: rows and bytes (for 'nothing changed' assertions)."""

    folders: list[tuple[str, str | None, str, str | None]]
    files: list[tuple[str, str, str, str | None, str | None]]
    versions: list[tuple[str, str, int, str]]
    blob_rows: list[str]
    blob_digests: list[str]
    tmp_files: list[str]


def stored_state(services: Services) -> StoredState:
    with services.read_sessions() as db:
        folders = [
            (str(f.id), str(f.parent_id) if f.parent_id else None, f.name, str(f.deleted_at))
            for f in db.scalars(select(Folder))
        ]
        files = [
            (str(f.id), str(f.folder_id), f.name, str(f.current_version_id), str(f.deleted_at))
            for f in db.scalars(select(File))
        ]
        versions = [(str(v.id), str(v.file_id), v.number, v.blob_sha256) for v in db.scalars(select(FileVersion))]
        blob_rows = list(db.scalars(select(Blob.sha256)))
    return StoredState(
        folders=sorted(folders),
        files=sorted(files),
        versions=sorted(versions),
        blob_rows=sorted(blob_rows),
        blob_digests=sorted(services.blobs.iter_digests()),
        tmp_files=tmp_files(services),
    )


def tmp_files(services: Services) -> list[str]:
    store = services.blobs
    assert isinstance(store, LocalBlobStore)
    return sorted(p.name for p in store.tmp_dir.iterdir())
