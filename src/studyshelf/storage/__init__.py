"""Blob storage backends; build_blob_store() is the one place that chooses."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from studyshelf.storage.interface import BlobNotFound, BlobStore, BlobWriter, StoredBlob

__all__ = ["BlobNotFound", "BlobStore", "BlobWriter", "StoredBlob", "build_blob_store"]


def build_blob_store(url: str) -> BlobStore:
    """Return the blob store a storage URL names (file://path or memory://)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from studyshelf.storage.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "memory":
        from studyshelf.storage.memory import MemoryBlobStore

        return MemoryBlobStore()
    raise ValueError(f"unsupported STUDYSHELF_STORAGE_URL scheme: {parsed.scheme!r} (use file:// or memory://)")
