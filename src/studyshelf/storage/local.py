"""Blobs as files on local disk: blobs/ab/cd/<sha256>, written via tmp/ + fsync + rename."""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from studyshelf.storage.interface import BlobNotFound, StoredBlob

HEAD_BYTES = 8192


def _valid_digest(sha256: str) -> bool:
    return len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)


class LocalBlobWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._tmp_path = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        self._fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        # The lock marks the temporary file as owned by a live writer; recover() skips it.
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def head(self) -> bytes:
        return self._head

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def sync(self) -> None:
        os.fsync(self._fd)

    def write(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(chunk)

    def commit(self) -> StoredBlob:
        return self.commit_as(self._hash.hexdigest())

    def commit_as(self, digest: str) -> StoredBlob:
        os.fsync(self._fd)
        final = self._store.path_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Always replace, even when identical bytes are there: if a purge deleted them a moment ago,
        # the upload that is about to refer to them puts them back.
        os.replace(self._tmp_path, final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._close()
        return StoredBlob(sha256=digest, size=self._size)

    def abort(self) -> None:
        self._tmp_path.unlink(missing_ok=True)
        self._close()

    def _close(self) -> None:
        if not self._closed:
            os.close(self._fd)
            self._closed = True


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not _valid_digest(sha256):
            raise BlobNotFound(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def writer(self) -> LocalBlobWriter:
        return LocalBlobWriter(self)

    def exists(self, sha256: str) -> bool:
        try:
            return self.path_for(sha256).is_file()
        except BlobNotFound:
            return False

    def size(self, sha256: str) -> int:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        try:
            handle = self.path_for(sha256).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        return self._iter(handle, start, end, chunk_size)

    @staticmethod
    def _iter(handle: object, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        import io

        assert isinstance(handle, io.BufferedReader)
        with handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def local_path(self, sha256: str) -> Path | None:
        return self.path_for(sha256)

    def delete(self, sha256: str) -> None:
        try:
            self.path_for(sha256).unlink(missing_ok=True)
        except BlobNotFound:
            return

    def iter_digests(self) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            if _valid_digest(path.name):
                yield path.name

    def recover(self) -> int:
        removed = 0
        for part in self.tmp_dir.glob("*.part"):
            try:
                fd = os.open(part, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            finally:
                pass
            try:
                part.unlink(missing_ok=True)
                removed += 1
            finally:
                os.close(fd)
        return removed
