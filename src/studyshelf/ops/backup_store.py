"""The backup location on disk: Litestream's replica, on-demand points with their manifests, and the blobs.

<backup>/litestream/              Litestream's replica of the SQLite WAL (its snapshots and LTX files)
<backup>/points/<id>/             an on-demand point: studyshelf.sqlite3, warehouse.duckdb, events/, manifest.json
<backup>/blob-manifests/<id>.json the blobs the store held at each blob sync of `backup replicate`
<backup>/blob-manifests/followed/<id>.json  the blobs `backup replicate` copied as their versions came in
<backup>/blobs/ab/cd/<sha256>     every blob once, content-addressed (shared by all points)
<backup>/install/secret_key       the install secret, so restored tokens and keys still verify
<backup>/verify.json              the outcome of the last `backup verify`

The same keys under an S3 prefix when STUDYSHELF_BACKUP_URL is s3://bucket/prefix (ops/backup_s3.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from studyshelf.core.errors import Invalid, NotFound
from studyshelf.ops.litestream import Replica
from studyshelf.storage.interface import RawBlobStore
from studyshelf.storage.local import LocalBlobStore

POINT_ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"
MANIFEST = "manifest.json"
HASH_CHUNK = 1 << 20
POINTS = "points"
BLOB_MANIFESTS = "blob-manifests"
FOLLOWED = "blob-manifests/followed"
INSTALL_SECRET = "install/secret_key"  # noqa: S105 - the key where the secret is kept, not a secret
VERIFY = "verify.json"
FULL_BELOW_BYTES = 64 * 1024**2  # less free space than this and a directory location counts as full

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


class LocationFiles(Protocol):
    """The files of a backup location by key ("points/<id>/manifest.json"): a directory or an S3 prefix."""

    @property
    def describe(self) -> str: ...

    def problem(self) -> tuple[str | None, int]:
        """Why backups cannot be written there (None: they can), and the free bytes (0: not known)."""
        ...

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, data: bytes) -> None:
        """Write durably and atomically: a reader sees the old value or the whole new one."""
        ...

    def download(self, key: str, target: Path) -> None: ...

    def sha256(self, key: str, progress: Progress | None = None) -> str | None:
        """The SHA-256 of a file (None: there is none), read through once."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key under the prefix, sorted."""
        ...

    def publish(self, draft: Path, prefix: str, last: str) -> None:
        """Put every file of the draft directory under `prefix`, `last` after all the others."""
        ...

    def delete(self, key: str) -> None: ...

    def total_size(self) -> int: ...


class DirectoryFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def describe(self) -> str:
        return str(self.root)

    def problem(self) -> tuple[str | None, int]:
        if not self.root.is_dir():
            return "unreachable: the directory does not exist", 0
        free = shutil.disk_usage(self.root).free
        probe = self.root / ".write-probe"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError:
            return "not writable", free
        if free < FULL_BELOW_BYTES:
            return f"full: {free} bytes free", free
        return None, free

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.part")
        # 0600: the install secret is one of these files, and nothing in a backup is for other users to read
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        draft.replace(path)

    def download(self, key: str, target: Path) -> None:
        shutil.copyfile(self.root / key, target)

    def sha256(self, key: str, progress: Progress | None = None) -> str | None:
        path = self.root / key
        return sha256_of(path, progress) if path.is_file() else None

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def publish(self, draft: Path, prefix: str, last: str) -> None:
        target = self.root / prefix
        target.parent.mkdir(parents=True, exist_ok=True)
        draft.rename(target)  # one rename: the point appears whole (drafts are made beside it)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def total_size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


class BackupLocation:
    """One backup location (STUDYSHELF_BACKUP_URL): its files, its blobs and Litestream's replica."""

    def __init__(self, files: LocationFiles, blobs: Callable[[], RawBlobStore], replica: Replica) -> None:
        self.files = files
        self._make_blobs = blobs
        self._blobs: RawBlobStore | None = None
        self.replica = replica  # where Litestream replicates: a directory or an S3 prefix

    @property
    def describe(self) -> str:
        return self.files.describe

    @property
    def blobs(self) -> RawBlobStore:
        """The backup's blobs, made on first use (a directory store makes its directories)."""
        if self._blobs is None:
            self._blobs = self._make_blobs()
        return self._blobs

    def prepare(self) -> None:
        """Make what a first backup needs (a no-op where keys need no directories)."""

    def draft_dir(self, identifier: str) -> Path:
        """A new empty directory to write a point into before `publish_point`."""
        return Path(tempfile.mkdtemp(prefix=f"studyshelf-point-{identifier}-"))

    def point_ids(self) -> list[str]:
        """Finished points, oldest first (a point is finished once its manifest is there)."""
        return sorted(k.split("/")[1] for k in self.files.keys(POINTS) if k.endswith(f"/{MANIFEST}"))

    def manifest(self, identifier: str) -> Manifest:
        key = f"{POINTS}/{identifier}/{MANIFEST}"
        raw = self.files.read(key)
        if raw is None:
            raise NotFound(f"no backup point {identifier} in {self.describe}")
        try:
            return Manifest.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise Invalid(f"backup point {identifier}: {key} is unreadable ({exc})") from exc

    def publish_point(self, draft: Path, identifier: str) -> None:
        self.files.publish(draft, f"{POINTS}/{identifier}", MANIFEST)

    def point_key(self, identifier: str, path: str) -> str:
        return f"{POINTS}/{identifier}/{path}"

    def drop_point(self, identifier: str) -> None:
        keys = self.files.keys(f"{POINTS}/{identifier}")
        manifest = self.point_key(identifier, MANIFEST)
        self.files.delete(manifest)  # first: a half-deleted point is no point
        for key in keys:
            if key != manifest:
                self.files.delete(key)

    def blob_manifest_ids(self) -> list[str]:
        return [k.removeprefix(f"{BLOB_MANIFESTS}/").removesuffix(".json") for k in self._manifest_keys(BLOB_MANIFESTS)]

    def followed_ids(self) -> list[str]:
        """Manifests of the blobs copied between two full blob manifests, oldest first."""
        return [k.removeprefix(f"{FOLLOWED}/").removesuffix(".json") for k in self._manifest_keys(FOLLOWED)]

    def _manifest_keys(self, prefix: str) -> list[str]:
        return [k for k in self.files.keys(prefix) if k.count("/") == prefix.count("/") + 1 and k.endswith(".json")]

    def blob_manifest(self, identifier: str) -> dict[str, int]:
        return self._blobs_of(f"{BLOB_MANIFESTS}/{identifier}.json")

    def followed_manifest(self, identifier: str) -> dict[str, int]:
        return self._blobs_of(f"{FOLLOWED}/{identifier}.json")

    def _blobs_of(self, key: str) -> dict[str, int]:
        raw = self.files.read(key)
        if raw is None:
            raise NotFound(f"no blob manifest {key} in {self.describe}")
        blobs: dict[str, int] = json.loads(raw)["blobs"]
        return blobs

    def write_blob_manifest(self, identifier: str, blobs: dict[str, int], *, followed: bool = False) -> None:
        key = f"{FOLLOWED if followed else BLOB_MANIFESTS}/{identifier}.json"
        self.files.write(key, json.dumps({"blobs": blobs}, indent=1, sort_keys=True).encode())

    def drop_blob_manifest(self, identifier: str, *, followed: bool = False) -> None:
        self.files.delete(f"{FOLLOWED if followed else BLOB_MANIFESTS}/{identifier}.json")

    def size(self) -> int:
        return self.files.total_size()

    def copied_blobs(self) -> Iterator[tuple[str, float]]:
        """Every blob of the backup with the time it was copied there (unix seconds)."""
        raise NotImplementedError

    def read_install_secret(self) -> bytes | None:
        return self.files.read(INSTALL_SECRET)


class DirectoryLocation(BackupLocation):
    """A backup directory: the layout above, on a local or mounted disk."""

    def __init__(self, root: Path) -> None:
        super().__init__(DirectoryFiles(root), self._local_blobs, root / "litestream")
        self.root = root
        self.points_dir = root / POINTS
        self.blob_manifests = root / BLOB_MANIFESTS
        self.followed = root / FOLLOWED
        self.install_dir = root / "install"

    def prepare(self) -> None:
        for directory in (self.root, self.points_dir, self.blob_manifests, self.followed, self.install_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def draft_dir(self, identifier: str) -> Path:
        draft = self.points_dir / f".{identifier}"  # beside the points: published by one rename
        draft.mkdir(parents=True)
        return draft

    def _local_blobs(self) -> LocalBlobStore:
        return LocalBlobStore(self.root / "blobs")

    @property
    def local_blobs(self) -> LocalBlobStore:
        blobs = self.blobs
        assert isinstance(blobs, LocalBlobStore)
        return blobs

    def copied_blobs(self) -> Iterator[tuple[str, float]]:
        for digest in self.local_blobs.iter_digests():
            yield digest, self.local_blobs.path_for(digest).stat().st_mtime
