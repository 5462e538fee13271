"""The BlobStore behaviour suite, written once; each backend only supplies the `store` fixture."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from studyshelf.storage import BlobNotFound, BlobStore, StoredBlob, build_blob_store
from studyshelf.storage.crypto import EncryptedBlobStore, MasterKeys
from studyshelf.storage.local import LocalBlobStore
from studyshelf.storage.memory import MemoryBlobStore
from studyshelf.storage.s3 import S3BlobStore, S3Options
from tests.s3_support import ACCESS_KEY, REGION, SECRET_KEY, S3Server

MISSING = "0" * 64


def put(store: BlobStore, data: bytes, *, chunk: int = 7) -> StoredBlob:
    writer = store.writer()
    for i in range(0, len(data), chunk):
        writer.write(data[i : i + chunk])
    return writer.commit()


def read_all(store: BlobStore, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20) -> bytes:
    return b"".join(store.read_range(sha256, start, store.size(sha256) if end is None else end, chunk_size))


class BlobStoreContract:
    """Behaviour every blob store must have."""

    def test_commit_returns_digest_and_size(self, store: BlobStore) -> None:
        data = b"the quick brown fox" * 100
        blob = put(store, data)
        assert blob == StoredBlob(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        assert store.exists(blob.sha256)
        assert store.size(blob.sha256) == len(data)
        assert read_all(store, blob.sha256) == data

    def test_writer_reports_size_and_head(self, store: BlobStore) -> None:
        writer = store.writer()
        writer.write(b"%PDF-1.7\n")
        writer.write(b"x" * 20_000)
        assert writer.size == 20_009
        assert writer.head.startswith(b"%PDF-1.7\nxxx")
        assert 0 < len(writer.head) <= 20_009
        writer.abort()

    def test_writer_digest_and_sync(self, store: BlobStore) -> None:
        writer = store.writer()
        writer.write(b"part one, ")
        assert writer.sha256 == hashlib.sha256(b"part one, ").hexdigest()
        writer.write(b"part two")
        writer.sync()
        assert writer.sha256 == hashlib.sha256(b"part one, part two").hexdigest()
        digest = writer.sha256
        assert not store.exists(digest)  # durable is not yet visible
        assert writer.commit() == StoredBlob(digest, 18)
        assert read_all(store, digest) == b"part one, part two"

    def test_empty_blob(self, store: BlobStore) -> None:
        blob = put(store, b"")
        assert blob.sha256 == hashlib.sha256(b"").hexdigest()
        assert blob.size == 0
        assert store.exists(blob.sha256)
        assert store.size(blob.sha256) == 0
        assert read_all(store, blob.sha256) == b""

    @pytest.mark.parametrize(("start", "end"), [(0, 1), (0, 1000), (999, 1000), (10, 20), (123, 877), (500, 500)])
    def test_read_range(self, store: BlobStore, start: int, end: int) -> None:
        data = os.urandom(1000)
        blob = put(store, data, chunk=333)
        assert read_all(store, blob.sha256, start, end) == data[start:end]

    def test_read_range_honours_chunk_size(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 10
        blob = put(store, data)
        chunks = list(store.read_range(blob.sha256, 5, 2005, chunk_size=300))
        assert b"".join(chunks) == data[5:2005]
        assert all(0 < len(c) <= 300 for c in chunks)

    def test_identical_bytes_are_stored_once(self, store: BlobStore) -> None:
        first = put(store, b"same bytes", chunk=3)
        second = put(store, b"same bytes", chunk=5)
        assert first == second
        assert list(store.iter_digests()).count(first.sha256) == 1
        assert read_all(store, first.sha256) == b"same bytes"

    def test_interleaved_writers_of_the_same_bytes(self, store: BlobStore) -> None:
        a, b = store.writer(), store.writer()
        a.write(b"twin ")
        b.write(b"twin ")
        a.write(b"bytes")
        b.write(b"bytes")
        assert a.commit() == b.commit()
        assert sorted(store.iter_digests()) == [hashlib.sha256(b"twin bytes").hexdigest()]

    def test_abort_leaves_nothing(self, store: BlobStore) -> None:
        kept = put(store, b"kept")
        writer = store.writer()
        writer.write(b"abandoned upload")
        writer.abort()
        assert not store.exists(hashlib.sha256(b"abandoned upload").hexdigest())
        assert list(store.iter_digests()) == [kept.sha256]
        assert store.recover() == 0

    def test_uncommitted_bytes_are_invisible(self, store: BlobStore) -> None:
        writer = store.writer()
        writer.write(b"in flight")
        assert not store.exists(hashlib.sha256(b"in flight").hexdigest())
        assert list(store.iter_digests()) == []
        writer.abort()

    def test_recover_spares_live_writers(self, store: BlobStore) -> None:
        writer = store.writer()
        writer.write(b"still uploading")
        assert store.recover() == 0
        blob = writer.commit()
        assert read_all(store, blob.sha256) == b"still uploading"

    def test_delete(self, store: BlobStore) -> None:
        gone, kept = put(store, b"gone"), put(store, b"kept")
        store.delete(gone.sha256)
        assert not store.exists(gone.sha256)
        assert store.exists(kept.sha256)
        assert list(store.iter_digests()) == [kept.sha256]
        store.delete(gone.sha256)  # deleting twice is fine
        store.delete(MISSING)

    def test_iter_digests_lists_every_blob(self, store: BlobStore) -> None:
        digests = {put(store, f"blob {i}".encode()).sha256 for i in range(5)}
        assert set(store.iter_digests()) == digests

    @pytest.mark.parametrize("digest", [MISSING, "not-a-digest", "../../etc/passwd", "A" * 64, ""])
    def test_missing_blobs_raise_blob_not_found(self, store: BlobStore, digest: str) -> None:
        assert not store.exists(digest)
        with pytest.raises(BlobNotFound):
            store.size(digest)
        with pytest.raises(BlobNotFound):
            b"".join(store.read_range(digest, 0, 1))

    def test_local_path_when_given_holds_the_bytes(self, store: BlobStore) -> None:
        blob = put(store, b"on disk?")
        path = store.local_path(blob.sha256)
        if path is not None:
            assert path.read_bytes() == b"on disk?"


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return build_blob_store(f"file://{tmp_path / 'blobs'}")

    def test_recover_removes_abandoned_temporary_files(self, store: BlobStore) -> None:
        # A crashed process leaves its .part file behind with nobody holding the lock.
        assert isinstance(store, LocalBlobStore)
        (store.tmp_dir / "crashed.part").write_bytes(b"half an upload")
        (store.tmp_dir / "also-crashed.part").write_bytes(b"")
        live = store.writer()
        live.write(b"live")
        assert store.recover() == 2
        assert len(list(store.tmp_dir.iterdir())) == 1  # only the live writer's file
        live.commit()
        assert list(store.tmp_dir.iterdir()) == []

    def test_commit_and_abort_leave_no_temporary_files(self, store: BlobStore) -> None:
        assert isinstance(store, LocalBlobStore)
        put(store, b"committed")
        writer = store.writer()
        writer.write(b"aborted")
        writer.abort()
        put(store, b"committed")  # the duplicate's temporary file goes too
        assert list(store.tmp_dir.iterdir()) == []


class TestMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self) -> BlobStore:
        store = build_blob_store("memory://")
        assert isinstance(store, MemoryBlobStore)
        return store


class TestEncryptedMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self) -> BlobStore:
        # A tiny chunk size, so the suite's small blobs span many chunks and end on partial ones.
        return EncryptedBlobStore(MemoryBlobStore(), MasterKeys(os.urandom(32)), chunk_size=64)


class TestEncryptedLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        store = build_blob_store(f"file://{tmp_path / 'blobs'}", master_keys=[os.urandom(32)])
        assert isinstance(store, EncryptedBlobStore)
        return store


def s3_options(server: S3Server) -> S3Options:
    return S3Options(
        endpoint_url=server.endpoint, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    )


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, s3_server: S3Server) -> BlobStore:
        store = build_blob_store(f"s3://{s3_server.fresh_bucket()}/blobs", s3=s3_options(s3_server))
        assert isinstance(store, S3BlobStore)
        return store


class TestEncryptedS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, s3_server: S3Server) -> BlobStore:
        store = build_blob_store(
            f"s3://{s3_server.fresh_bucket()}", master_keys=[os.urandom(32)], s3=s3_options(s3_server)
        )
        assert isinstance(store, EncryptedBlobStore)
        assert isinstance(store.inner, S3BlobStore)
        return store


def test_unknown_storage_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        build_blob_store("ftp://example.com/blobs")
