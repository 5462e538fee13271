"""Backups with encryption at rest: they carry the ciphertext, never a key; verify and restore need the key."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from studyshelf.ops import backup, backup_restore
from studyshelf.ops.backup_blobs import BlobCopyFailed, check_blobs, copy_missing_blobs, restore_blobs
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.storage import build_blob_store
from studyshelf.storage.crypto import (
    ALL_SEALED,
    CHUNK_OVERHEAD,
    CHUNK_SIZE,
    EncryptedBlobStore,
    EncryptionKeyError,
    MasterKeys,
    is_sealed,
)
from studyshelf.storage.local import LocalBlobStore
from tests.conftest import Member, make_settings
from tests.library.support import uploaded

MASTER_KEY = os.urandom(32)
KNOWN_PLAINTEXT = b"StudyShelf known plaintext: lecture 7, the answers. " * 4000  # about 3 chunks


def _stored(store: EncryptedBlobStore | LocalBlobStore, data: bytes) -> str:
    writer = store.writer()
    writer.write(data)
    return writer.commit().sha256


def _key_forms(key: bytes) -> list[bytes]:
    """The master key as it could leak: raw, base64 (standard and URL-safe) and hex (both cases)."""
    return [
        key,
        base64.b64encode(key),
        base64.urlsafe_b64encode(key),
        base64.b64encode(key).rstrip(b"="),
        key.hex().encode(),
        key.hex().upper().encode(),
    ]


def _flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        backup_url=str(tmp_path / "backup"),
        encryption_key=base64.b64encode(MASTER_KEY).decode(),
    )


def test_backup_holds_the_ciphertext_and_a_restore_with_the_key_serves_the_plaintext(
    owner: Member, services: Services, tmp_path: Path
) -> None:
    assert isinstance(services.blobs, EncryptedBlobStore)
    digest = uploaded(owner, owner.root_folder_id, "answers.txt", KNOWN_PLAINTEXT)["sha256"]
    small = uploaded(owner, owner.root_folder_id, "small.txt", b"a small file")["sha256"]
    identifier = backup.create_point(services)
    location = backup.location_of(services.settings)

    for blob in (digest, small):
        assert location.blobs.path_for(blob).read_bytes() == services.blobs.inner.path_for(blob).read_bytes()  # type: ignore[attr-defined]  # the inner store of this install is a LocalBlobStore
        assert is_sealed(location.blobs, blob)
    assert location.blobs.exists(ALL_SEALED)
    assert backup_restore.verify_point(services.settings, identifier) == []
    assert backup_restore.prune(services.settings, now=services.clock.now()).blobs == 0
    assert location.blobs.exists(ALL_SEALED)  # the marker is no blob of a point, yet prune keeps it

    target = tmp_path / "restored"
    done = backup_restore.restore(services.settings, target=target, at=None)

    assert done.blobs == 2
    assert done.missing_blobs == []
    restored = LocalBlobStore(target / "blobs")
    assert restored.path_for(digest).read_bytes() == location.blobs.path_for(digest).read_bytes()
    assert restored.exists(ALL_SEALED)
    served = EncryptedBlobStore(restored, MasterKeys(MASTER_KEY))
    assert served.all_sealed
    assert b"".join(served.read_range(digest, 0, served.size(digest))) == KNOWN_PLAINTEXT
    with pytest.raises(EncryptionKeyError, match="STUDYSHELF_ENCRYPTION_KEY"):
        build_blob_store(f"file://{target / 'blobs'}")  # the restored data dir needs the key to start


def test_no_form_of_the_master_key_is_in_the_backup_or_the_logs_and_no_plaintext_in_its_blobs(
    owner: Member, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uploaded(owner, owner.root_folder_id, "answers.txt", KNOWN_PLAINTEXT)
    identifier = backup.create_point(services)
    backup.sync_blobs(services)
    backup_restore.verify_point(services.settings, identifier)
    backup_restore.restore(services.settings, target=tmp_path / "restored", at=None)
    location = backup.location_of(services.settings)

    files = [path for root in (location.root, tmp_path / "restored") for path in root.rglob("*") if path.is_file()]
    assert len(files) > 5
    for path in files:
        content = path.read_bytes()
        assert not [form for form in _key_forms(MASTER_KEY) if form in content], path
    log_text = caplog.text.encode()
    assert not [form for form in _key_forms(MASTER_KEY) if form in log_text]
    blob_files = list((location.root / "blobs").glob("??/??/*"))
    assert blob_files
    for path in blob_files:
        assert KNOWN_PLAINTEXT[:64] not in path.read_bytes(), path


def test_a_corrupt_ciphertext_chunk_in_the_backup_is_named_by_verify_and_refused_by_restore(
    owner: Member, services: Services, tmp_path: Path
) -> None:
    digest = uploaded(owner, owner.root_folder_id, "answers.txt", KNOWN_PLAINTEXT)["sha256"]
    identifier = backup.create_point(services)
    location = backup.location_of(services.settings)
    _flip_byte(location.blobs.path_for(digest), CHUNK_SIZE + CHUNK_OVERHEAD + 100)  # inside chunk 1

    problems = backup_restore.verify_point(services.settings, identifier)

    assert len(problems) == 1
    assert digest in problems[0]
    assert "chunk 1 does not authenticate" in problems[0]
    with pytest.raises(BlobCopyFailed, match=f"{digest}.*chunk 1 does not authenticate"):
        backup_restore.restore(services.settings, target=tmp_path / "restored", at=None)
    assert not any((tmp_path / "restored").iterdir())


def test_without_the_master_key_verify_fails_naming_the_setting_and_restore_refuses(
    owner: Member, services: Services, tmp_path: Path
) -> None:
    uploaded(owner, owner.root_folder_id, "answers.txt", KNOWN_PLAINTEXT)
    identifier = backup.create_point(services)
    keyless = services.settings.model_copy(update={"encryption_key": ""})

    problems = backup_restore.verify_point(keyless, identifier)

    assert problems == [
        "1 encrypted blobs cannot be verified without the master key: "
        "set STUDYSHELF_ENCRYPTION_KEY (or STUDYSHELF_ENCRYPTION_KEY_FILE) to the master key"
    ]
    with pytest.raises(BlobCopyFailed, match="encrypted and no master key is set: set STUDYSHELF_ENCRYPTION_KEY"):
        backup_restore.restore(keyless, target=tmp_path / "restored", at=None)


# The functions below are the ones the PostgreSQL path (backup_pg: sync_blobs, verify, restore) shares.


def test_a_copy_that_does_not_authenticate_stores_nothing(tmp_path: Path) -> None:
    source = EncryptedBlobStore(LocalBlobStore(tmp_path / "store"), MasterKeys(MASTER_KEY))
    digest = _stored(source, KNOWN_PLAINTEXT)
    _flip_byte(source.inner.path_for(digest), 20)  # type: ignore[attr-defined]  # a LocalBlobStore inside
    target = LocalBlobStore(tmp_path / "backup")

    with pytest.raises(BlobCopyFailed, match=f"{digest}.*chunk 0 does not authenticate"):
        copy_missing_blobs(source, target, [digest])

    assert not target.exists(digest)


def test_blobs_sealed_after_their_backup_are_replaced_by_ciphertext_once_the_store_is_all_sealed(
    tmp_path: Path,
) -> None:
    raw = LocalBlobStore(tmp_path / "store")
    older = _stored(raw, KNOWN_PLAINTEXT)  # written before encryption was turned on
    source = EncryptedBlobStore(raw, MasterKeys(MASTER_KEY))
    newer = _stored(source, b"uploaded with encryption on")
    target = LocalBlobStore(tmp_path / "backup")

    assert copy_missing_blobs(source, target, [older, newer]) == 2
    assert not is_sealed(target, older)  # plaintext in the store, so plaintext in the backup (hash-checked)
    assert is_sealed(target, newer)
    assert not target.exists(ALL_SEALED)

    source.encrypt_existing(older)
    source.mark_all_sealed()
    assert copy_missing_blobs(source, target, [older, newer]) == 0

    assert is_sealed(target, older)
    assert KNOWN_PLAINTEXT[:64] not in target.path_for(older).read_bytes()
    assert target.exists(ALL_SEALED)
    assert check_blobs(target, [older, newer], [MASTER_KEY]) == []

    restored = LocalBlobStore(tmp_path / "restored")
    assert restore_blobs(target, restored, [older, newer], [MASTER_KEY]) == 2
    served = EncryptedBlobStore(restored, MasterKeys(MASTER_KEY))
    assert served.all_sealed
    assert b"".join(served.read_range(older, 0, served.size(older))) == KNOWN_PLAINTEXT


def test_old_master_keys_still_verify_and_restore_blobs_backed_up_before_a_rotation(tmp_path: Path) -> None:
    old_key, new_key = MASTER_KEY, os.urandom(32)
    source = EncryptedBlobStore(LocalBlobStore(tmp_path / "store"), MasterKeys(old_key))
    digest = _stored(source, KNOWN_PLAINTEXT)
    target = LocalBlobStore(tmp_path / "backup")
    copy_missing_blobs(source, target, [digest])

    assert check_blobs(target, [digest], [new_key, old_key]) == []
    problems = check_blobs(target, [digest], [new_key])
    assert len(problems) == 1
    assert digest in problems[0]
    assert "unknown master key" in problems[0]
    assert restore_blobs(target, LocalBlobStore(tmp_path / "restored"), [digest], [new_key, old_key]) == 1
