"""EncryptedBlobStore: ranges against the plaintext, tamper detection of every field, rotation, sealing old blobs."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyshelf.core.errors import BlobIntegrityError
from studyshelf.settings import Settings
from studyshelf.storage import build_blob_store, crypto
from studyshelf.storage.crypto import (
    CHUNK_OVERHEAD,
    NONCE_BYTES,
    TRAILER_BYTES,
    EncryptedBlobStore,
    EncryptionKeyError,
    MasterKeys,
)
from studyshelf.storage.interface import TailChanged
from studyshelf.storage.local import LocalBlobStore
from studyshelf.storage.memory import MemoryBlobStore

CHUNK = 64  # small chunks: a few hundred bytes cross many chunk boundaries
OLD_KEY, NEW_KEY = os.urandom(32), os.urandom(32)


def encrypted(inner: MemoryBlobStore | None = None, *, key: bytes = OLD_KEY, old: tuple[bytes, ...] = ()) -> Store:
    return EncryptedBlobStore(inner or MemoryBlobStore(), MasterKeys(key, old), chunk_size=CHUNK)


Store = EncryptedBlobStore


def put(store: EncryptedBlobStore, data: bytes) -> str:
    writer = store.writer()
    for i in range(0, len(data), 10):
        writer.write(data[i : i + 10])
    return writer.commit().sha256


def read(store: EncryptedBlobStore, digest: str, start: int = 0, end: int | None = None, chunk: int = 1 << 20) -> bytes:
    return b"".join(store.read_range(digest, start, store.size(digest) if end is None else end, chunk))


def raw(store: EncryptedBlobStore, digest: str) -> bytes:
    inner = store.inner
    assert isinstance(inner, MemoryBlobStore)
    return inner.blobs[digest]


def set_raw(store: EncryptedBlobStore, digest: str, data: bytes) -> None:
    inner = store.inner
    assert isinstance(inner, MemoryBlobStore)
    inner.blobs[digest] = data


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=5 * CHUNK + 7),
    bounds=st.tuples(st.integers(0, 6 * CHUNK), st.integers(0, 6 * CHUNK)),
    chunk=st.integers(1, 3 * CHUNK),
)
def test_any_range_reads_the_plaintext(data: bytes, bounds: tuple[int, int], chunk: int) -> None:
    store = encrypted()
    digest = put(store, data)
    start, end = min(bounds), max(bounds)
    pieces = list(store.read_range(digest, start, end, chunk))
    assert b"".join(pieces) == data[start:end]
    assert all(0 < len(p) <= chunk for p in pieces)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 1])
def test_sizes_at_and_around_chunk_multiples(size: int) -> None:
    store = encrypted()
    data = os.urandom(size)
    digest = put(store, data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.size(digest) == size
    assert read(store, digest) == data
    if size:
        assert read(store, digest, 0, 1) == data[:1]
        assert read(store, digest, size - 1, size) == data[-1:]
    for boundary in range(CHUNK, size, CHUNK):  # the bytes either side of every chunk boundary
        assert read(store, digest, boundary - 1, boundary + 1) == data[boundary - 1 : boundary + 1]
    assert len(raw(store, digest)) == size + max(1, -(-size // CHUNK)) * CHUNK_OVERHEAD + TRAILER_BYTES


def test_ciphertext_holds_no_plaintext_and_dedup_still_works() -> None:
    store = encrypted()
    data = b"the secret exam answers " * 50
    first, second = put(store, data), put(store, data)
    assert first == second == hashlib.sha256(data).hexdigest()
    assert list(store.iter_digests()) == [first]
    assert b"secret exam" not in raw(store, first)


def test_a_read_decrypts_only_the_chunks_it_touches() -> None:
    inner = MemoryBlobStore()
    store = encrypted(inner)
    digest = put(store, os.urandom(20 * CHUNK))
    asked: list[tuple[int, int]] = []
    real = inner.read_range

    def spy(sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> object:
        asked.append((start, end))
        return real(sha256, start, end, chunk_size)

    inner.read_range = spy  # type: ignore[method-assign]  # records the ciphertext spans read
    assert read(store, digest, 5 * CHUNK + 3, 6 * CHUNK + 1) != b""
    trailer_read, chunks_read = asked
    assert trailer_read[1] - trailer_read[0] == TRAILER_BYTES
    assert chunks_read == (5 * (CHUNK + CHUNK_OVERHEAD), 7 * (CHUNK + CHUNK_OVERHEAD))  # chunks 5 and 6 only


def _flip(at: Callable[[int], int]) -> Callable[[bytes], bytes]:
    def tamper(blob: bytes) -> bytes:
        position = at(len(blob))
        return blob[:position] + bytes([blob[position] ^ 0x01]) + blob[position + 1 :]

    return tamper


STRIDE = CHUNK + CHUNK_OVERHEAD
TRAILER_FIELDS = {"magic": 0, "key id": 8, "wrap nonce": 16, "wrapped key": 28, "chunk size": 76, "size": 80}
TAMPERING: dict[str, Callable[[bytes], bytes]] = {
    "chunk nonce": _flip(lambda _: STRIDE + 3),
    "chunk body": _flip(lambda _: STRIDE + NONCE_BYTES + 5),
    "chunk tag": _flip(lambda _: 2 * STRIDE - 1),
    "last chunk body": _flip(lambda n: n - TRAILER_BYTES - 20),
    **{f"trailer {name}": _flip(lambda n, at=at: n - TRAILER_BYTES + at) for name, at in TRAILER_FIELDS.items()},
    "last chunk truncated": lambda b: b[: -TRAILER_BYTES - 1] + b[-TRAILER_BYTES:],
    "last chunk dropped": lambda b: b[: 3 * STRIDE] + b[-TRAILER_BYTES:],
    "two chunks swapped": lambda b: b[STRIDE : 2 * STRIDE] + b[:STRIDE] + b[2 * STRIDE :],
    "extended": lambda b: b[:-TRAILER_BYTES] + b"x" + b[-TRAILER_BYTES:],
}


@pytest.mark.parametrize("how", TAMPERING)
def test_tampering_is_detected_and_never_served(how: str, caplog: pytest.LogCaptureFixture) -> None:
    store = encrypted()
    data = os.urandom(3 * CHUNK + 10)
    digest = put(store, data)
    store.mark_all_sealed()  # as `keys encrypt-existing` leaves it, or a store encrypted from the start
    set_raw(store, digest, TAMPERING[how](raw(store, digest)))
    with caplog.at_level(logging.ERROR, logger="studyshelf.storage"), pytest.raises(BlobIntegrityError):
        read(store, digest)
    assert f"blob {digest} failed its integrity check" in caplog.text
    assert OLD_KEY.hex() not in caplog.text


@pytest.mark.parametrize("how", TAMPERING)
@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_tampering_after_a_read_is_still_detected(how: str, on_disk: bool, tmp_path: Path) -> None:
    """The unwrapped data key is kept between reads, keyed by the exact trailer: a changed blob still fails."""
    inner = LocalBlobStore(tmp_path) if on_disk else MemoryBlobStore()
    store = EncryptedBlobStore(inner, MasterKeys(OLD_KEY), chunk_size=CHUNK)
    data = os.urandom(3 * CHUNK + 10)
    digest = put(store, data)
    store.mark_all_sealed()
    assert read(store, digest) == data  # the data key is unwrapped and kept from here on
    if isinstance(inner, LocalBlobStore):
        path = inner.path_for(digest)
        path.chmod(0o600)
        path.write_bytes(TAMPERING[how](path.read_bytes()))
    else:
        set_raw(store, digest, TAMPERING[how](raw(store, digest)))
    with pytest.raises(BlobIntegrityError):
        read(store, digest)


def test_a_trailer_moved_after_both_blobs_were_read_still_does_not_unwrap() -> None:
    store = encrypted()
    a, b = put(store, b"a" * 100), put(store, b"b" * 100)
    assert read(store, a) == b"a" * 100  # both data keys are kept from here on
    assert read(store, b) == b"b" * 100
    set_raw(store, a, raw(store, a)[:-TRAILER_BYTES] + raw(store, b)[-TRAILER_BYTES:])
    with pytest.raises(BlobIntegrityError, match="wrapped data key"):
        read(store, a)


def test_before_every_blob_is_sealed_a_blob_without_trailer_is_read_as_plaintext() -> None:
    store = encrypted()
    digest = put(store, b"sealed" * 40)
    set_raw(store, digest, b"\x00" + raw(store, digest)[1:-TRAILER_BYTES])  # strips the trailer: looks like old
    assert read(store, digest)  # still migrating: served as it is (docs/security.md says why this is bounded)
    store.mark_all_sealed()
    with pytest.raises(BlobIntegrityError, match="without encryption"):
        read(store, digest)
    assert list(store.iter_digests()) == [digest]  # the marker is no blob of ours


def test_a_trailer_moved_to_another_blob_does_not_unwrap() -> None:
    store = encrypted()
    a, b = put(store, b"a" * 100), put(store, b"b" * 100)
    set_raw(store, a, raw(store, a)[:-TRAILER_BYTES] + raw(store, b)[-TRAILER_BYTES:])
    with pytest.raises(BlobIntegrityError, match="wrapped data key"):
        read(store, a)


def test_a_blob_under_an_unknown_master_key_is_refused() -> None:
    inner = MemoryBlobStore()
    digest = put(encrypted(inner, key=OLD_KEY), b"hello")
    with pytest.raises(BlobIntegrityError, match="unknown master key"):
        read(encrypted(inner, key=NEW_KEY), digest)


def test_rotation_rewraps_without_reencrypting_and_keeps_every_file_readable() -> None:
    inner = MemoryBlobStore()
    before = encrypted(inner, key=OLD_KEY)
    files = {put(before, os.urandom(n)): n for n in (0, 1, CHUNK, 5 * CHUNK + 3)}
    sealed_before = {d: raw(before, d) for d in files}
    after = encrypted(inner, key=NEW_KEY, old=(OLD_KEY,))
    assert [after.rewrap(d) for d in files] == [True] * len(files)
    assert [after.rewrap(d) for d in files] == [False] * len(files)  # done already: nothing to do
    for digest in files:
        assert raw(after, digest)[:-TRAILER_BYTES] == sealed_before[digest][:-TRAILER_BYTES]  # chunks as they were
        assert raw(after, digest)[-TRAILER_BYTES:] != sealed_before[digest][-TRAILER_BYTES:]
        assert hashlib.sha256(read(after, digest)).hexdigest() == digest
        only_new = encrypted(inner, key=NEW_KEY)  # the old key may now be dropped
        assert hashlib.sha256(read(only_new, digest)).hexdigest() == digest


def test_old_plaintext_blobs_stay_readable_while_being_sealed() -> None:
    inner = MemoryBlobStore()
    plain = {}
    for n in (0, 5, 3 * CHUNK):
        writer = inner.writer()
        data = os.urandom(n)
        writer.write(data)
        plain[writer.commit().sha256] = data
    store = encrypted(inner)
    for digest, data in plain.items():
        assert read(store, digest) == data  # before
        assert store.encrypt_existing(digest)
        assert read(store, digest) == data  # after
        assert not store.encrypt_existing(digest)  # resumable: a second run skips it
        assert store.trailer(digest) is not None
        assert data == b"" or data not in raw(store, digest)


def test_sealing_refuses_a_plaintext_blob_that_does_not_match_its_digest() -> None:
    inner = MemoryBlobStore()
    digest = hashlib.sha256(b"original").hexdigest()
    inner.blobs[digest] = b"altered!"
    with pytest.raises(BlobIntegrityError):
        encrypted(inner).encrypt_existing(digest)
    assert inner.blobs[digest] == b"altered!"


def test_start_is_refused_with_the_wrong_key_or_without_one(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'blobs'}"
    store = build_blob_store(url, master_keys=[OLD_KEY])
    writer = store.writer()
    writer.write(b"sealed")
    writer.commit()
    with pytest.raises(EncryptionKeyError, match="STUDYSHELF_ENCRYPTION_KEY"):
        build_blob_store(url, master_keys=[NEW_KEY])
    with pytest.raises(EncryptionKeyError, match="STUDYSHELF_ENCRYPTION_KEY"):
        build_blob_store(url)
    reopened = build_blob_store(url, master_keys=[NEW_KEY, OLD_KEY])
    assert isinstance(reopened, EncryptedBlobStore)
    assert reopened.all_sealed  # encrypted from its first blob


def test_a_sealed_store_without_key_is_refused_even_when_the_sample_misses(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'blobs'}"
    build_blob_store(url, master_keys=[OLD_KEY])  # empty: marked all sealed at once
    with pytest.raises(EncryptionKeyError, match="STUDYSHELF_ENCRYPTION_KEY_FILE"):
        build_blob_store(url)


def test_plaintext_store_without_a_key_starts_as_before(tmp_path: Path) -> None:
    store = build_blob_store(f"file://{tmp_path / 'blobs'}")
    writer = store.writer()
    writer.write(b"plain")
    writer.commit()
    assert isinstance(build_blob_store(f"file://{tmp_path / 'blobs'}"), LocalBlobStore)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"encryption_key": "too-short"}, "STUDYSHELF_ENCRYPTION_KEY"),
        ({"encryption_key": "ab" * 31}, "STUDYSHELF_ENCRYPTION_KEY"),
        ({"encryption_key_file": "/nonexistent/master.key"}, "STUDYSHELF_ENCRYPTION_KEY_FILE"),
        ({"encryption_key": NEW_KEY.hex(), "encryption_old_keys": ["nope"]}, "STUDYSHELF_ENCRYPTION_OLD_KEYS"),
        ({"encryption_old_keys": [OLD_KEY.hex()]}, "STUDYSHELF_ENCRYPTION_OLD_KEYS"),
        ({"encryption_key": NEW_KEY.hex(), "encryption_key_file": "/x"}, "STUDYSHELF_ENCRYPTION_KEY_FILE"),
    ],
)
def test_bad_master_keys_are_refused_naming_the_setting(tmp_path: Path, env: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named) as refused:
        Settings(data_dir=tmp_path, **env)  # type: ignore[arg-type]  # values as the environment gives them
    assert NEW_KEY.hex() not in str(refused.value)
    assert OLD_KEY.hex() not in str(refused.value)


def test_master_key_as_hex_base64_or_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.b64encode(NEW_KEY).decode() + "\n")
    assert Settings(data_dir=tmp_path, encryption_key=NEW_KEY.hex()).encryption_master_keys() == [NEW_KEY]
    from_file = Settings(data_dir=tmp_path, encryption_key_file=key_file, encryption_old_keys=[OLD_KEY.hex()])
    assert from_file.encryption_master_keys() == [NEW_KEY, OLD_KEY]
    assert NEW_KEY.hex() not in repr(Settings(data_dir=tmp_path, encryption_key=NEW_KEY.hex()))
    assert Settings(data_dir=tmp_path).encryption_master_keys() == []


def sealed_on_disk(tmp_path: Path) -> tuple[LocalBlobStore, dict[str, bytes], EncryptedBlobStore]:
    """Files sealed under OLD_KEY on local disk, and a store that has rotated to NEW_KEY over them."""
    inner = LocalBlobStore(tmp_path)
    before = EncryptedBlobStore(inner, MasterKeys(OLD_KEY), chunk_size=CHUNK)
    files = {put(before, data): data for data in (os.urandom(n) for n in (0, 1, CHUNK, 5 * CHUNK + 3))}
    return inner, files, EncryptedBlobStore(inner, MasterKeys(NEW_KEY, (OLD_KEY,)), chunk_size=CHUNK)


def test_rotation_on_disk_rewrites_only_the_trailer_in_place(tmp_path: Path) -> None:
    inner, files, after = sealed_on_disk(tmp_path)
    before = {d: (inner.path_for(d).stat().st_ino, inner.path_for(d).read_bytes()) for d in files}
    assert [after.rewrap(d) for d in files] == [True] * len(files)
    assert [after.rewrap(d) for d in files] == [False] * len(files)
    for digest, data in files.items():
        inode, sealed = before[digest]
        now = inner.path_for(digest).read_bytes()
        assert inner.path_for(digest).stat().st_ino == inode  # the same file: written in place, not replaced
        assert len(now) == len(sealed)
        assert now[:-TRAILER_BYTES] == sealed[:-TRAILER_BYTES]
        assert now[-TRAILER_BYTES:] != sealed[-TRAILER_BYTES:]
        assert read(after, digest) == data
        assert read(EncryptedBlobStore(inner, MasterKeys(NEW_KEY), chunk_size=CHUNK), digest) == data
    assert not list(tmp_path.glob("??/??/*.tail"))  # every journal removed


def interrupted_rotation(tmp_path: Path, leave: Callable[[bytes, bytes], bytes]) -> None:
    """Journal a rotation as replace_tail does, leave the blob's tail as `leave(old, new)`, then recover."""
    inner, files, _ = sealed_on_disk(tmp_path)
    rotated = encrypted(key=NEW_KEY, old=(OLD_KEY,))  # computes the new trailers on a copy
    for digest in files:
        path = inner.path_for(digest)
        sealed = path.read_bytes()
        rotated_inner = rotated.inner
        assert isinstance(rotated_inner, MemoryBlobStore)
        rotated_inner.blobs[digest] = sealed
        assert rotated.rewrap(digest)
        old, new = sealed[-TRAILER_BYTES:], rotated_inner.blobs[digest][-TRAILER_BYTES:]
        path.with_name(path.name + ".tail").write_bytes(old + new + hashlib.sha256(old + new).digest())
        path.chmod(0o600)
        path.write_bytes(sealed[:-TRAILER_BYTES] + leave(old, new))
    assert inner.recover() == len(files)
    assert not list(tmp_path.glob("??/??/*.tail"))
    only_new = EncryptedBlobStore(inner, MasterKeys(NEW_KEY), chunk_size=CHUNK)
    for digest, data in files.items():
        assert read(only_new, digest) == data


def test_a_crash_before_the_trailer_was_written_is_finished_by_recover(tmp_path: Path) -> None:
    interrupted_rotation(tmp_path, lambda old, new: old)


def test_a_torn_trailer_is_finished_by_recover(tmp_path: Path) -> None:
    interrupted_rotation(tmp_path, lambda old, new: old[: TRAILER_BYTES // 2] + new[TRAILER_BYTES // 2 :])
    interrupted_rotation(
        tmp_path / "other half", lambda old, new: new[: TRAILER_BYTES // 2] + old[TRAILER_BYTES // 2 :]
    )


def test_a_crash_after_the_trailer_was_written_only_drops_the_journal(tmp_path: Path) -> None:
    interrupted_rotation(tmp_path, lambda old, new: new)


def test_a_journal_torn_while_written_leaves_the_blob_alone(tmp_path: Path) -> None:
    inner, files, _ = sealed_on_disk(tmp_path)
    digest, data = next(iter(files.items()))
    path = inner.path_for(digest)
    sealed = path.read_bytes()
    path.with_name(path.name + ".tail").write_bytes(sealed[-TRAILER_BYTES:] + b"\x00" * 40)
    assert inner.recover() == 1
    assert path.read_bytes() == sealed
    assert read(EncryptedBlobStore(inner, MasterKeys(OLD_KEY), chunk_size=CHUNK), digest) == data


def test_a_tail_changed_since_it_was_read_is_refused_without_writing(tmp_path: Path) -> None:
    inner, files, _ = sealed_on_disk(tmp_path)
    digest = next(iter(files))
    sealed = inner.path_for(digest).read_bytes()
    stale = bytes(b ^ 1 for b in sealed[-TRAILER_BYTES:])
    with pytest.raises(TailChanged):
        inner.replace_tail(digest, stale, os.urandom(TRAILER_BYTES))
    assert inner.path_for(digest).read_bytes() == sealed
    assert not list(tmp_path.glob("??/??/*.tail"))


def test_a_read_meeting_a_trailer_torn_by_a_rotation_reads_it_again(tmp_path: Path) -> None:
    inner, files, after = sealed_on_disk(tmp_path)
    digest, data = list(files.items())[-1]
    path = inner.path_for(digest)
    old = path.read_bytes()[-TRAILER_BYTES:]
    assert after.rewrap(digest)
    new = path.read_bytes()[-TRAILER_BYTES:]
    torn = old[: TRAILER_BYTES // 2] + new[TRAILER_BYTES // 2 :]
    reads = iter([torn, new])
    real_read = crypto._StoredBytes.read

    def read_during_the_write(stored: crypto._StoredBytes, start: int, end: int) -> bytes:
        return next(reads) if end - start == TRAILER_BYTES else real_read(stored, start, end)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crypto._StoredBytes, "read", read_during_the_write)
        assert b"".join(after.read_range(digest, 0, len(data))) == data
    assert next(reads, None) is None  # the torn trailer was met, then read again
