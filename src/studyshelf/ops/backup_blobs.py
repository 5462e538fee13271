"""Blobs between the store and the backup, copied as stored: ciphertext stays ciphertext.

An encrypted blob (chunks and trailer, storage/crypto.py) is copied byte for byte from the raw store under
its name, then read back through an EncryptedBlobStore over the copy: every chunk must authenticate and the
plaintext must hash to the name, or the copy is removed again. A blob stored as plaintext (encryption off,
or not sealed yet) is hashed on the way, as before. The master keys only ever come from the settings and
are held in memory: nothing here writes them anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from studyshelf.core.errors import BlobIntegrityError, Invalid
from studyshelf.ops.backup_store import Progress
from studyshelf.storage.crypto import ALL_SEALED, EncryptedBlobStore, MasterKeys, is_sealed
from studyshelf.storage.interface import BlobStore, RawBlobStore
from studyshelf.storage.local import LocalBlobStore

FEW_BLOBS = 32  # up to this many, each is looked up in the backup; more, the backup is listed once
KEY_NEEDED = "set STUDYSHELF_ENCRYPTION_KEY (or STUDYSHELF_ENCRYPTION_KEY_FILE) to the master key"


class BlobCopyFailed(Invalid):
    """A blob's bytes did not authenticate or hash to its name while being copied."""


def master_keys_of(keys: Sequence[bytes]) -> MasterKeys | None:
    """The settings' master keys (current first), or None when encryption is off."""
    return MasterKeys(keys[0], keys[1:]) if keys else None


def copy_blob(source: BlobStore, target: RawBlobStore, digest: str, progress: Progress | None = None) -> None:
    """Copy one blob as stored and check the copy; a blob that fails the check is not stored."""
    if isinstance(source, EncryptedBlobStore) and is_sealed(source.inner, digest):
        _copy_sealed(source.inner, source.keys, target, digest, progress)
    else:
        _copy_plain(source.inner if isinstance(source, EncryptedBlobStore) else source, target, digest, progress)


def _copy_plain(source: BlobStore, target: RawBlobStore, digest: str, progress: Progress | None) -> None:
    writer = target.writer()
    try:
        for chunk in source.read_range(digest, 0, source.size(digest)):
            writer.write(chunk)
            if progress:
                progress(len(chunk))
        if writer.sha256 != digest:
            if is_sealed(source, digest):
                raise BlobCopyFailed(f"blob {digest} is encrypted and no master key is set: {KEY_NEEDED}")
            raise BlobCopyFailed(f"blob {digest} does not match its checksum (read {writer.sha256}); not copied")
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def _copy_sealed(
    raw: BlobStore, keys: MasterKeys, target: RawBlobStore, digest: str, progress: Progress | None
) -> None:
    writer = target.writer()
    try:
        for chunk in raw.read_range(digest, 0, raw.size(digest)):
            writer.write(chunk)
        writer.commit_as(digest)
    except BaseException:
        writer.abort()
        raise
    try:
        read_back = plaintext_digest(EncryptedBlobStore(target, keys), digest, progress)
    except BlobIntegrityError as exc:
        target.delete(digest)
        raise BlobCopyFailed(f"blob {digest}: {exc} Not copied.") from None
    if read_back != digest:
        target.delete(digest)
        raise BlobCopyFailed(f"blob {digest} decrypts to other bytes (read {read_back}); not copied")


def plaintext_digest(store: BlobStore, digest: str, progress: Progress | None = None) -> str:
    """The SHA-256 of the blob's bytes as the store serves them (decrypted, every chunk authenticated)."""
    hashed = hashlib.sha256()
    for chunk in store.read_range(digest, 0, store.size(digest)):
        hashed.update(chunk)
        if progress:
            progress(len(chunk))
    return hashed.hexdigest()


def copy_missing_blobs(
    source: BlobStore, target: RawBlobStore, digests: Iterable[str], progress: Progress | None = None
) -> int:
    """Copy the blobs `target` does not hold yet (blobs never change, so a held one is never copied again).

    Once the source is all sealed, the backup's plaintext copies of blobs sealed since are replaced by their
    ciphertext, and the backup gets the all sealed marker too (so a restore keeps it).
    """
    wanted = list(digests)
    # Many blobs: one listing of the backup rather than a question per blob (an HTTP request each in S3).
    present = set(target.iter_digests()) if len(wanted) > FEW_BLOBS else None
    copied = 0
    for digest in wanted:
        held = target.exists(digest) if present is None else digest in present
        if held:
            if progress:
                progress(source.size(digest))
            continue
        copy_blob(source, target, digest, progress)
        copied += 1
    if isinstance(source, EncryptedBlobStore) and source.all_sealed and not target.exists(ALL_SEALED):
        for digest in list(target.iter_digests()):
            if source.exists(digest) and not is_sealed(target, digest):
                copy_blob(source, target, digest)
        _copy_plain(source.inner, target, ALL_SEALED, None)
    return copied


def restore_blobs(
    backup: RawBlobStore,
    target: LocalBlobStore,
    digests: Iterable[str],
    keys: Sequence[bytes],
    *,
    progress: Progress | None = None,
    sizing: Callable[[int], None] | None = None,
) -> int:
    """Copy blobs back from the backup as they are stored there, checked (encrypted ones need the master key).

    The all sealed marker comes along when the backup has it. Returns how many blobs were copied.
    """
    master = master_keys_of(keys)
    source: BlobStore = backup if master is None else EncryptedBlobStore(backup, master)
    wanted = list(digests)
    if sizing is not None:
        sizing(sum(source.size(digest) for digest in wanted))
    copied = 0
    for digest in wanted:
        copy_blob(source, target, digest, progress)
        copied += 1
    if backup.exists(ALL_SEALED):
        _copy_plain(backup, target, ALL_SEALED, None)
    return copied


def check_blobs(
    backup: RawBlobStore,
    digests: Iterable[str],
    keys: Sequence[bytes],
    progress: Progress | None = None,
    *,
    where: str = "the backup",
) -> list[str]:
    """Check each blob of the backup (decrypt and hash, or hash); return each failure, naming the blob."""
    master = master_keys_of(keys)
    decrypting = None if master is None else EncryptedBlobStore(backup, master)
    problems: list[str] = []
    unreadable = 0
    for digest in digests:
        if not backup.exists(digest):
            problems.append(f"blob {digest}: missing from {where}")
            continue
        sealed = is_sealed(backup, digest)
        if sealed and decrypting is None:
            unreadable += 1
            continue
        try:
            store: BlobStore = decrypting if sealed and decrypting is not None else backup
            read = plaintext_digest(store, digest, progress)
        except BlobIntegrityError as exc:
            problems.append(f"blob {digest}: {exc} (in {where})")
            continue
        if read != digest:
            problems.append(f"blob {digest}: checksum mismatch (in {where})")
    if unreadable:
        problems.append(f"{unreadable} encrypted blobs cannot be verified without the master key: {KEY_NEEDED}")
    return problems
