"""The blob store: immutable byte strings addressed by their SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from studyshelf.core.errors import Unavailable


class BlobNotFound(Exception):
    """The store holds no blob with that digest."""


class StorageUnavailable(Unavailable):
    """The store could not be reached or refused a request: answered 503 problem+json, nothing was changed."""

    type_slug = "storage-unavailable"
    title = "File storage unavailable"


class StorageConfigError(ValueError):
    """The storage settings do not reach a usable store (an S3 endpoint down, a missing bucket): refuse to start."""


class TailChanged(Exception):
    """The blob no longer ends with the bytes the caller read: it was rewritten meanwhile, nothing was written."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    size: int


HEAD_BYTES = 8192  # what a writer keeps of the first bytes, for sniffing the content type


class WriterTally:
    """The size, head and running SHA-256 that every BlobWriter reports; a writer calls `_count` with each chunk."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""

    @property
    def size(self) -> int:
        return self._size

    @property
    def head(self) -> bytes:
        return self._head

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _count(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self._hash.update(chunk)
        self._size += len(chunk)


class BlobWriter(Protocol):
    """A blob being written: bytes go to a private temporary place until commit."""

    @property
    def size(self) -> int: ...

    @property
    def head(self) -> bytes:
        """The first bytes written (for sniffing the content type)."""
        ...

    @property
    def sha256(self) -> str:
        """The digest of the bytes written so far."""
        ...

    def write(self, chunk: bytes) -> None: ...

    def sync(self) -> None:
        """Make the written bytes durable (before a transaction that will refer to them)."""
        ...

    def commit(self) -> StoredBlob:
        """Make the bytes durable and visible under their digest; identical bytes are stored once."""
        ...

    def abort(self) -> None:
        """Forget the bytes; nothing stays behind."""
        ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield bytes [start, end) of a blob in chunks; raise BlobNotFound if absent."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file on local disk, when there is one (lets the server use sendfile)."""
        ...

    def delete(self, sha256: str) -> None: ...

    def iter_digests(self) -> Iterator[str]: ...

    def recover(self) -> int:
        """Remove what interrupted writes left behind; return how many were removed."""
        ...


class RawBlobWriter(BlobWriter, Protocol):
    def commit_as(self, sha256: str) -> StoredBlob:
        """Make the bytes visible under a name the caller vouches for (a wrapper that transforms the bytes)."""
        ...


class RawBlobStore(BlobStore, Protocol):
    """A store whose writers can commit under a given name: what EncryptedBlobStore wraps."""

    def writer(self) -> RawBlobWriter: ...


@runtime_checkable
class TailReplaceable(Protocol):
    """A store that can replace a blob's last bytes in place, crash-safely (a key rotation's new trailer)."""

    def replace_tail(self, sha256: str, old_tail: bytes, new_tail: bytes) -> None:
        """Overwrite the blob's last len(old_tail) bytes with new_tail, if they still are old_tail.

        Raise TailChanged (writing nothing) when they are not; after a crash `recover` finishes the job.
        """
        ...


@runtime_checkable
class PresignedDelivery(Protocol):
    """A store that can hand a reader a short-lived URL of its own instead of sending the bytes (S3 presigned)."""

    def presigned_url(
        self, sha256: str, *, expires_in: int, content_type: str, content_disposition: str, cache_control: str
    ) -> str | None:
        """A URL answering the whole blob (Range honoured) with these headers, or None: send the bytes yourself."""
        ...

    @property
    def presigned_origin(self) -> str | None:
        """Where presigned URLs point (scheme://host[:port]), for the viewer's CSP; None when none are handed out."""
        ...
