"""The backup location on disk: Litestream's replica, on-demand points with their manifests, and the blobs.

<backup>/litestream/              Litestream's replica of the SQLite WAL (its snapshots and LTX files)
<backup>/points/<id>/             an on-demand point: studyshelf.sqlite3, warehouse.duckdb, events/, manifest.json
<backup>/blob-manifests/<id>.json the blobs the store held at each blob sync of `backup replicate`
<backup>/blob-manifests/followed/<id>.json  the blobs `backup replicate` copied as their versions came in
<backup>/blobs/ab/cd/<sha256>     every blob once, content-addressed (shared by all points)
<backup>/install/secret_key       the install secret, so restored tokens and keys still verify
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studyshelf.core.errors import Invalid, NotFound
from studyshelf.storage.local import LocalBlobStore

POINT_ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"
MANIFEST = "manifest.json"
HASH_CHUNK = 1 << 20

Progress = Callable[[int], None]  # advance a progress bar by this many bytes


def point_id(at: datetime) -> str:
    return at.astimezone(UTC).strftime(POINT_ID_FORMAT)


def point_time(identifier: str) -> datetime:
    try:
        return datetime.strptime(identifier, POINT_ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise NotFound(f"{identifier!r} is not a backup point (ids look like 20260101T000000.000000Z)") from None


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def write_json(path: Path, value: Any) -> None:
    """Write durably and atomically: a reader sees the old file or the whole new one."""
    draft = path.with_name(f".{path.name}.part")
    with draft.open("w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    draft.replace(path)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file of a point (relative path) with the checksum and size recorded when it was written."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: datetime
    files: tuple[FileEntry, ...]  # the database first, then the warehouse and spool segments when present
    blobs: dict[str, int]  # sha256 → size of every blob the point's database knows

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "blobs": self.blobs,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Manifest:
        files = tuple(FileEntry(f["path"], f["sha256"], int(f["size"])) for f in value.get("files", []))
        return cls(datetime.fromisoformat(value["created_at"]), files, dict(value["blobs"]))


class BackupLocation:
    """One backup directory (STUDYSHELF_BACKUP_URL)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.replica = root / "litestream"
        self.points_dir = root / "points"
        self.blob_manifests = root / "blob-manifests"
        self.followed = self.blob_manifests / "followed"
        self.install_dir = root / "install"
        self._blobs: LocalBlobStore | None = None

    @property
    def blobs(self) -> LocalBlobStore:
        if self._blobs is None:
            self._blobs = LocalBlobStore(self.root / "blobs")
        return self._blobs

    def prepare(self) -> None:
        for directory in (self.root, self.points_dir, self.blob_manifests, self.followed, self.install_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def point_ids(self) -> list[str]:
        """Finished points, oldest first (a point being written is a hidden draft directory)."""
        if not self.points_dir.is_dir():
            return []
        return sorted(p.name for p in self.points_dir.iterdir() if (p / MANIFEST).is_file())

    def manifest(self, identifier: str) -> Manifest:
        path = self.points_dir / identifier / MANIFEST
        if not path.is_file():
            raise NotFound(f"no backup point {identifier} in {self.points_dir}")
        try:
            return Manifest.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise Invalid(f"backup point {identifier}: {path} is unreadable ({exc})") from exc

    def blob_manifest_ids(self) -> list[str]:
        if not self.blob_manifests.is_dir():
            return []
        return sorted(p.stem for p in self.blob_manifests.glob("*.json"))

    def blob_manifest(self, identifier: str) -> dict[str, int]:
        blobs: dict[str, int] = json.loads((self.blob_manifests / f"{identifier}.json").read_text())["blobs"]
        return blobs

    def followed_ids(self) -> list[str]:
        """Manifests of the blobs copied between two full blob manifests, oldest first."""
        if not self.followed.is_dir():
            return []
        return sorted(p.stem for p in self.followed.glob("*.json"))

    def followed_manifest(self, identifier: str) -> dict[str, int]:
        blobs: dict[str, int] = json.loads((self.followed / f"{identifier}.json").read_text())["blobs"]
        return blobs

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
