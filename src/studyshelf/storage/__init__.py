"""Blob storage backends; build_blob_store() is the one place that chooses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from studyshelf.storage.interface import (
    BlobNotFound,
    BlobStore,
    BlobWriter,
    PresignedDelivery,
    RawBlobStore,
    StorageUnavailable,
    StoredBlob,
)

if TYPE_CHECKING:
    from studyshelf.storage.s3 import S3Options

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "BlobWriter",
    "PresignedDelivery",
    "StorageUnavailable",
    "StoredBlob",
    "build_blob_store",
]


def build_blob_store(url: str, *, master_keys: Sequence[bytes] = (), s3: S3Options | None = None) -> BlobStore:
    """Return the blob store a storage URL names (file://path, s3://bucket/prefix or memory://), encrypted when
    given master keys.

    `master_keys` is the current key first, then previous ones. Keys that cannot read the store, or a
    store holding encrypted blobs and no key, raise EncryptionKeyError (a ValueError): refuse to start.
    An S3 bucket that cannot be reached raises StorageConfigError (a ValueError) naming the setting.
    """
    store = _build_raw_blob_store(url, s3)
    from studyshelf.storage.crypto import EncryptedBlobStore, MasterKeys, refuse_sealed_without_key

    if not master_keys:
        refuse_sealed_without_key(store)
        return store
    encrypted = EncryptedBlobStore(store, MasterKeys(master_keys[0], master_keys[1:]))
    encrypted.check_keys()
    return encrypted


def _build_raw_blob_store(url: str, s3: S3Options | None) -> RawBlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from studyshelf.storage.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3":
        from studyshelf.storage.s3 import S3BlobStore, S3Options

        store = S3BlobStore.from_url(url, s3 or S3Options())
        store.check()
        return store
    if parsed.scheme == "memory":
        from studyshelf.storage.memory import MemoryBlobStore

        return MemoryBlobStore()
    raise ValueError(f"unsupported STUDYSHELF_STORAGE_URL scheme: {parsed.scheme!r} (use file://, s3:// or memory://)")
