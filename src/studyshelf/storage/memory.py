"""Blobs in a dict, for tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from studyshelf.storage.interface import BlobNotFound, StoredBlob, WriterTally


class MemoryBlobWriter(WriterTally):
    def __init__(self, store: MemoryBlobStore) -> None:
        super().__init__()
        self._store = store
        self._parts: list[bytes] = []

    def sync(self) -> None:
        return None

    def write(self, chunk: bytes) -> None:
        self._parts.append(bytes(chunk))
        self._count(chunk)

    def commit(self) -> StoredBlob:
        return self.commit_as(self._hash.hexdigest())

    def commit_as(self, digest: str) -> StoredBlob:
        data = b"".join(self._parts)
        self._store.blobs[digest] = data
        self._parts = []
        return StoredBlob(sha256=digest, size=len(data))

    def abort(self) -> None:
        self._parts = []


class MemoryBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def writer(self) -> MemoryBlobWriter:
        return MemoryBlobWriter(self)

    def exists(self, sha256: str) -> bool:
        return sha256 in self.blobs

    def size(self, sha256: str) -> int:
        try:
            return len(self.blobs[sha256])
        except KeyError as exc:
            raise BlobNotFound(sha256) from exc

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        try:
            data = self.blobs[sha256]
        except KeyError as exc:
            raise BlobNotFound(sha256) from exc
        return (data[i : min(i + chunk_size, end)] for i in range(start, end, chunk_size))

    def local_path(self, sha256: str) -> Path | None:
        return None

    def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    def iter_digests(self) -> Iterator[str]:
        return iter(list(self.blobs))

    def recover(self) -> int:
        return 0
