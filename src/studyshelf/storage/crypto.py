"""Encryption at rest: EncryptedBlobStore wraps a blob store with AES-256-GCM envelope encryption.

A stored blob is its chunks followed by a fixed-size trailer (docs/security.md):

    chunk i = nonce (12) ‖ AES-GCM(data key, nonce, plaintext i, aad = chunk size ‖ i ‖ final flag)
    trailer = magic (8) ‖ master key id (8) ‖ wrap nonce (12) ‖ wrapped data key (48) ‖ chunk size (4) ‖ size (8)

The data key is random per blob and wrapped by the master key with the trailer's other fields and
the plaintext SHA-256 as associated data, so a trailer moved to another blob, a changed size or a
changed key id fails to unwrap. The trailer sits at the end because the digest and size are known
only when the upload ends. A blob always has at least one chunk, and the last one carries the final
flag, so truncation and reordering are detected. Blobs stay named by their plaintext digest. A key
rotation rewrites only the trailer (in place where the inner store allows it, `rewrap`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from studyshelf.core.errors import BlobIntegrityError
from studyshelf.storage.interface import (
    BlobNotFound,
    BlobStore,
    RawBlobStore,
    RawBlobWriter,
    StoredBlob,
    TailChanged,
    TailReplaceable,
    WriterTally,
)

log = logging.getLogger("studyshelf.storage")

MAGIC = b"SSBLOB\x00\x01"  # the last byte is the format version
CHUNK_SIZE = 64 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_OVERHEAD = NONCE_BYTES + TAG_BYTES
READ_BATCH = 1 << 20  # plaintext decrypted per read from the inner store (whole chunks)
UNWRAPPED_KEYS = 256  # data keys kept unwrapped per store, least recently used out first
_TRAILER = struct.Struct(">8s8s12s48sIQ")
TRAILER_BYTES = _TRAILER.size
_CHUNK_AAD = struct.Struct(">IQ?")
# A plaintext blob in the inner store whose presence says "every blob here is encrypted": from then on a
# blob without a trailer is refused rather than served, and a start without a master key is refused.
ALL_SEALED_TEXT = b"StudyShelf: every blob in this store is encrypted (docs/security.md)\n"
ALL_SEALED = hashlib.sha256(ALL_SEALED_TEXT).hexdigest()


class EncryptionKeyError(ValueError):
    """The configured master keys cannot read the store: refuse to start."""


@dataclass(frozen=True)
class MasterKey:
    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> bytes:
        """A short public name of the key (8 bytes of a hash): stored with each blob, never the key itself."""
        return hashlib.sha256(b"studyshelf blob master key\x00" + self.secret).digest()[:8]


class MasterKeys:
    """The current master key, which wraps new data keys, and previous ones still needed to unwrap."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self.current = MasterKey(current)
        self._by_id = {key.key_id: key for key in (MasterKey(secret) for secret in (*previous, current))}

    def find(self, key_id: bytes) -> MasterKey | None:
        return self._by_id.get(key_id)


@dataclass(frozen=True)
class Trailer:
    key_id: bytes
    wrap_nonce: bytes
    wrapped_key: bytes = field(repr=False)
    chunk_size: int
    size: int

    @classmethod
    def parse(cls, raw: bytes) -> Trailer | None:
        """The trailer in the last bytes of a stored blob, or None when the blob is plaintext."""
        if len(raw) != TRAILER_BYTES or not raw.startswith(MAGIC):
            return None
        _, key_id, nonce, wrapped, chunk_size, size = _TRAILER.unpack(raw)
        return cls(key_id, nonce, wrapped, chunk_size, size)

    def pack(self) -> bytes:
        return _TRAILER.pack(MAGIC, self.key_id, self.wrap_nonce, self.wrapped_key, self.chunk_size, self.size)

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.size // self.chunk_size))

    @property
    def stored_size(self) -> int:
        return self.size + self.chunk_count * CHUNK_OVERHEAD + TRAILER_BYTES

    def wrap_aad(self, sha256: str) -> bytes:
        return MAGIC + self.key_id + struct.pack(">IQ", self.chunk_size, self.size) + bytes.fromhex(sha256)

    def chunk_offset(self, index: int) -> int:
        return index * (self.chunk_size + CHUNK_OVERHEAD)

    def chunk_end(self, index: int) -> int:
        """Where chunk `index` ends in the stored blob."""
        plain = min(self.chunk_size, self.size - index * self.chunk_size)
        return self.chunk_offset(index) + CHUNK_OVERHEAD + plain


def wrap_data_key(master: MasterKey, data_key: bytes, *, sha256: str, chunk_size: int, size: int) -> Trailer:
    """Seal a blob's data key under a master key, bound to the blob's digest, size and chunking."""
    draft = Trailer(master.key_id, os.urandom(NONCE_BYTES), b"", chunk_size, size)
    wrapped = AESGCM(master.secret).encrypt(draft.wrap_nonce, data_key, draft.wrap_aad(sha256))
    return Trailer(draft.key_id, draft.wrap_nonce, wrapped, chunk_size, size)


def _chunk_aad(chunk_size: int, index: int, *, final: bool) -> bytes:
    return _CHUNK_AAD.pack(chunk_size, index, final)


def integrity_error(sha256: str, reason: str) -> BlobIntegrityError:
    """Log a failed check (digest and reason only, never key material) and return the error to raise."""
    log.error("blob %s failed its integrity check: %s", sha256, reason)
    return BlobIntegrityError(f"The stored bytes of this file failed their integrity check ({reason}).")


class EncryptedBlobWriter(WriterTally):
    def __init__(self, store: EncryptedBlobStore) -> None:
        super().__init__()
        self._store = store
        self._inner: RawBlobWriter = store.inner.writer()
        self._data_key = AESGCM.generate_key(bit_length=256)
        self._cipher = AESGCM(self._data_key)
        self._chunk_size = store.chunk_size
        self._pending = bytearray()
        self._index = 0

    def write(self, chunk: bytes) -> None:
        self._count(chunk)
        self._pending += chunk
        # Keep at least one byte back: only commit knows which chunk is the final one.
        full = (len(self._pending) - 1) // self._chunk_size
        if full > 0:
            view = memoryview(self._pending)
            for n in range(full):
                self._seal(view[n * self._chunk_size : (n + 1) * self._chunk_size], final=False)
            view.release()
            del self._pending[: full * self._chunk_size]

    def _seal(self, plaintext: bytes | bytearray | memoryview, *, final: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        aad = _chunk_aad(self._chunk_size, self._index, final=final)
        self._inner.write(nonce + self._cipher.encrypt(nonce, bytes(plaintext), aad))
        self._index += 1

    def sync(self) -> None:
        self._inner.sync()

    def commit(self) -> StoredBlob:
        self._seal(self._pending, final=True)
        self._pending = bytearray()
        digest = self._hash.hexdigest()
        trailer = wrap_data_key(
            self._store.keys.current, self._data_key, sha256=digest, chunk_size=self._chunk_size, size=self._size
        )
        self._inner.write(trailer.pack())
        self._inner.commit_as(digest)
        return StoredBlob(sha256=digest, size=self._size)

    def abort(self) -> None:
        self._pending = bytearray()
        self._inner.abort()


class EncryptedBlobStore:
    """A BlobStore that encrypts what it writes and decrypts, chunk by chunk, only the ranges read.

    Blobs written before encryption was turned on (no trailer) are read as they are until
    `encrypt_existing` has sealed them all and `mark_all_sealed` has been called; after that, a blob
    without a trailer is refused.
    """

    def __init__(self, inner: RawBlobStore, keys: MasterKeys, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.inner = inner
        self.keys = keys
        self.chunk_size = chunk_size
        self.all_sealed = inner.exists(ALL_SEALED)
        self._ciphers: OrderedDict[tuple[str, bytes], AESGCM] = OrderedDict()
        self._ciphers_lock = threading.Lock()

    def mark_all_sealed(self) -> None:
        """Record in the store that every blob is encrypted (call once none is left as plaintext)."""
        writer = self.inner.writer()
        writer.write(ALL_SEALED_TEXT)
        writer.commit()
        self.all_sealed = True

    def writer(self) -> EncryptedBlobWriter:
        return EncryptedBlobWriter(self)

    def exists(self, sha256: str) -> bool:
        return self.inner.exists(sha256)

    def size(self, sha256: str) -> int:
        trailer = self.trailer(sha256)
        return self.inner.size(sha256) if trailer is None else trailer.size

    def read_range(self, sha256: str, start: int, end: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        stored = _StoredBytes(self.inner, sha256)
        try:
            trailer, raw_trailer = self._read_trailer(sha256, stored)
            if trailer is None:
                stored.close()
                return self.inner.read_range(sha256, start, end, chunk_size)
            trailer, cipher = self._cipher_for_read(sha256, stored, trailer, raw_trailer)
        except BaseException:
            stored.close()
            raise
        end = min(end, trailer.size)
        if start >= end:
            stored.close()
            return iter(())
        return self._decrypt(sha256, trailer, cipher, stored, start, end, chunk_size)

    def local_path(self, sha256: str) -> Path | None:
        return None  # the file on disk holds ciphertext: bytes must come through read_range

    def delete(self, sha256: str) -> None:
        self.inner.delete(sha256)

    def iter_digests(self) -> Iterator[str]:
        return (sha256 for sha256 in self.inner.iter_digests() if sha256 != ALL_SEALED)

    def recover(self) -> int:
        return self.inner.recover()

    def trailer(self, sha256: str) -> Trailer | None:
        """The blob's trailer, checked against its stored length; None for a blob stored as plaintext."""
        stored = _StoredBytes(self.inner, sha256)
        try:
            return self._read_trailer(sha256, stored)[0]
        finally:
            stored.close()

    def _read_trailer(self, sha256: str, stored: _StoredBytes) -> tuple[Trailer | None, bytes]:
        raw = stored.read(max(stored.size - TRAILER_BYTES, 0), stored.size)
        trailer = Trailer.parse(raw)
        if trailer is None and self.all_sealed:
            raise integrity_error(sha256, "stored without encryption in a store where every blob is encrypted")
        if trailer is not None and (trailer.chunk_size <= 0 or trailer.stored_size != stored.size):
            raise integrity_error(sha256, "stored length does not match the trailer: truncated or extended")
        return trailer, raw

    def _cipher_for_read(
        self, sha256: str, stored: _StoredBytes, trailer: Trailer, raw_trailer: bytes
    ) -> tuple[Trailer, AESGCM]:
        try:
            return trailer, self._cipher(sha256, trailer, raw_trailer)
        except BlobIntegrityError:
            # `rewrap` may have been writing this trailer in place at that instant: a torn read; look once more.
            again, raw_again = self._read_trailer(sha256, stored)
            if again is None or raw_again == raw_trailer:
                raise
            return again, self._cipher(sha256, again, raw_again)

    def _cipher(self, sha256: str, trailer: Trailer, raw_trailer: bytes) -> AESGCM:
        """The blob's data key, ready to decrypt: unwrapped once, then kept for these exact trailer bytes.

        Keyed by the digest and the trailer's every byte, so a changed trailer (or the same trailer moved to
        another blob) misses and goes through the full unwrap and its checks again.
        """
        key = (sha256, raw_trailer)
        with self._ciphers_lock:
            cipher = self._ciphers.get(key)
            if cipher is not None:
                self._ciphers.move_to_end(key)
                return cipher
        cipher = AESGCM(self._unwrap(sha256, trailer))
        with self._ciphers_lock:
            self._ciphers[key] = cipher
            while len(self._ciphers) > UNWRAPPED_KEYS:
                self._ciphers.popitem(last=False)
        return cipher

    def _unwrap(self, sha256: str, trailer: Trailer) -> bytes:
        master = self.keys.find(trailer.key_id)
        if master is None:
            raise integrity_error(sha256, f"wrapped by unknown master key {trailer.key_id.hex()}")
        try:
            return AESGCM(master.secret).decrypt(trailer.wrap_nonce, trailer.wrapped_key, trailer.wrap_aad(sha256))
        except InvalidTag:
            raise integrity_error(sha256, "the wrapped data key does not authenticate") from None

    def _decrypt(
        self,
        sha256: str,
        trailer: Trailer,
        cipher: AESGCM,
        stored: _StoredBytes,
        start: int,
        end: int,
        chunk_size: int,
    ) -> Iterator[bytes]:
        with stored:
            first, last = start // trailer.chunk_size, (end - 1) // trailer.chunk_size
            per_batch = max(1, READ_BATCH // trailer.chunk_size)  # 16 chunks of 64 KiB: a 1 MiB range in one read
            for batch_first in range(first, last + 1, per_batch):
                batch_last = min(batch_first + per_batch - 1, last)
                plain = self._decrypt_chunks(sha256, trailer, cipher, stored, batch_first, batch_last)
                offset = batch_first * trailer.chunk_size
                lo, hi = max(start - offset, 0), min(end - offset, len(plain))
                if lo == 0 and hi == len(plain) <= chunk_size:
                    yield plain  # the common case (whole chunks asked for): no copy
                    continue
                view = memoryview(plain)[lo:hi]
                for i in range(0, len(view), chunk_size):
                    yield bytes(view[i : i + chunk_size])

    def _decrypt_chunks(
        self,
        sha256: str,
        trailer: Trailer,
        cipher: AESGCM,
        stored: _StoredBytes,
        first: int,
        last: int,
    ) -> bytes:
        """Chunks first..last, each authenticated before any of the batch is returned."""
        chunk_size = trailer.chunk_size
        base, stop = trailer.chunk_offset(first), trailer.chunk_end(last)
        # Taken on every call, never held across a yield: the generator's next step may run on another thread.
        sealed = memoryview(_sealed_buffer(stop - base))[: stop - base]
        if stored.read_into(sealed, base) != stop - base:
            raise integrity_error(sha256, "a chunk is missing")
        size = min(trailer.size, (last + 1) * chunk_size) - first * chunk_size
        # Decrypted straight into the bytes object handed out: a BytesIO that alone holds its initial bytes writes
        # into them in place, and getvalue() gives them away when no view is left (a bytearray would cost a copy
        # into bytes). bytes(size) is calloc'd: a large one comes as fresh zero pages, with no memset.
        plain = io.BytesIO(bytes(size))
        final_index = trailer.chunk_count - 1
        with plain.getbuffer() as out:
            at = 0
            for index in range(first, last + 1):
                into = (index - first) * chunk_size
                length = min(chunk_size, size - into)
                until = at + CHUNK_OVERHEAD + length
                aad = _CHUNK_AAD.pack(chunk_size, index, index == final_index)
                try:
                    cipher.decrypt_into(
                        sealed[at : at + NONCE_BYTES], sealed[at + NONCE_BYTES : until], aad, out[into : into + length]
                    )
                except InvalidTag:
                    raise integrity_error(sha256, f"chunk {index} does not authenticate") from None
                at = until
        return plain.getvalue()

    def rewrap(self, sha256: str) -> bool:
        """Put the blob's data key under the current master key; the sealed chunks stay as they are.

        On a store that can replace a blob's last bytes (`TailReplaceable`: local disk) only the trailer is
        rewritten, in place and journalled; on another store the sealed chunks are copied into a new blob with
        the new trailer. Either way a reader sees the old or the new trailer, and both wrap the same data key.
        """
        try:
            return self._rewrap(sha256)
        except TailChanged:
            return self._rewrap(sha256)  # rewritten meanwhile (an identical upload): look at it again

    def _rewrap(self, sha256: str) -> bool:
        with _StoredBytes(self.inner, sha256) as stored:
            trailer, raw_trailer = self._read_trailer(sha256, stored)
        if trailer is None or trailer.key_id == self.keys.current.key_id:
            return False
        fresh = wrap_data_key(
            self.keys.current,
            self._unwrap(sha256, trailer),
            sha256=sha256,
            chunk_size=trailer.chunk_size,
            size=trailer.size,
        )
        if isinstance(self.inner, TailReplaceable):
            self.inner.replace_tail(sha256, raw_trailer, fresh.pack())
            return True
        writer = self.inner.writer()
        try:
            for sealed in self.inner.read_range(sha256, 0, trailer.stored_size - TRAILER_BYTES, READ_BATCH):
                writer.write(sealed)
            writer.write(fresh.pack())
            writer.commit_as(sha256)
        except BaseException:
            writer.abort()
            raise
        return True

    def encrypt_existing(self, sha256: str) -> bool:
        """Seal a blob stored as plaintext (from before encryption was on); False when it is sealed already."""
        if self._has_trailer(sha256):
            return False
        writer = self.writer()
        try:
            for chunk in self.inner.read_range(sha256, 0, self.inner.size(sha256), READ_BATCH):
                writer.write(chunk)
            if writer.sha256 != sha256:
                raise integrity_error(sha256, "the plaintext does not match its digest")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return True

    def _has_trailer(self, sha256: str) -> bool:
        return is_sealed(self.inner, sha256)

    def check_keys(self, *, sample: int = 32) -> None:
        """Refuse keys that cannot read the store: the first `sample` sealed blobs must unwrap.

        A store that is still empty is marked as all sealed: encrypted from its first blob.
        """
        if not self.all_sealed and next(iter(self.inner.iter_digests()), None) is None:
            self.mark_all_sealed()
        for sha256 in _sealed_sample(self.inner, sample):
            trailer = self.trailer(sha256)
            assert trailer is not None
            if self.keys.find(trailer.key_id) is None:
                raise EncryptionKeyError(
                    f"STUDYSHELF_ENCRYPTION_KEY: blobs are encrypted with master key {trailer.key_id.hex()}, which "
                    "is neither STUDYSHELF_ENCRYPTION_KEY (or _KEY_FILE) nor in STUDYSHELF_ENCRYPTION_OLD_KEYS"
                )
            try:
                self._unwrap(sha256, trailer)
            except BlobIntegrityError:
                continue  # one tampered blob is answered 500 when read; it does not stop the service


_per_thread = threading.local()


def _sealed_buffer(size: int) -> bytearray:
    """This thread's buffer for ciphertext read from disk, reused: a fresh 1 MiB one per read costs its zero-fill.

    Safe to share between the reads a thread interleaves: a batch is read and decrypted into its own plaintext
    buffer within one call, so nothing refers to the ciphertext across a yield.
    """
    buffer: bytearray | None = getattr(_per_thread, "sealed", None)
    if buffer is None or len(buffer) < size:
        buffer = _per_thread.sealed = bytearray(max(size, READ_BATCH + (READ_BATCH // CHUNK_SIZE) * CHUNK_OVERHEAD))
    return buffer


class _StoredBytes:
    """One stored blob read by offset: through a single open file when the inner store keeps blobs on disk."""

    def __init__(self, inner: RawBlobStore, sha256: str) -> None:
        self._inner = inner
        self._sha256 = sha256
        self._file: io.FileIO | None = None  # a file object, not a bare fd: closed by GC if a read is never started
        self._fd: int | None = None
        path = inner.local_path(sha256)
        if path is None:
            self.size = inner.size(sha256)
            return
        try:
            self._file = io.FileIO(path, "r")
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        self._fd = self._file.fileno()
        self.size = os.fstat(self._fd).st_size

    def read(self, start: int, end: int) -> bytes:
        if self._fd is not None:
            return os.pread(self._fd, end - start, start)
        return b"".join(self._inner.read_range(self._sha256, start, end, max(end - start, 1)))

    def read_into(self, buffer: memoryview, start: int) -> int:
        """Fill `buffer` from `start`; the number of bytes read (fewer only at the end of the blob)."""
        if self._fd is None:
            data = self.read(start, start + len(buffer))
            buffer[: len(data)] = data
            return len(data)
        filled = 0
        while filled < len(buffer):
            got = os.preadv(self._fd, [buffer[filled:]], start + filled)
            if got == 0:
                break
            filled += got
        return filled

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._fd = None, None

    def __enter__(self) -> _StoredBytes:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def refuse_sealed_without_key(store: RawBlobStore, *, sample: int = 32) -> None:
    """Without a master key, refuse a store that holds encrypted blobs rather than serve ciphertext."""
    if store.exists(ALL_SEALED):
        raise EncryptionKeyError(
            "STUDYSHELF_ENCRYPTION_KEY: every blob in the store is encrypted; "
            "set STUDYSHELF_ENCRYPTION_KEY or STUDYSHELF_ENCRYPTION_KEY_FILE"
        )
    for _ in _sealed_sample(store, sample):
        raise EncryptionKeyError(
            "STUDYSHELF_ENCRYPTION_KEY: the blob store holds encrypted blobs; "
            "set STUDYSHELF_ENCRYPTION_KEY or STUDYSHELF_ENCRYPTION_KEY_FILE"
        )


def is_sealed(store: BlobStore, sha256: str) -> bool:
    """Whether the stored bytes end in a trailer (ciphertext), read from a raw store; False for plaintext."""
    stored = store.size(sha256)
    tail = b"".join(store.read_range(sha256, max(stored - TRAILER_BYTES, 0), stored))
    return Trailer.parse(tail) is not None


def _sealed_sample(store: RawBlobStore, sample: int) -> Iterator[str]:
    """Digests of sealed blobs among the first `sample` the store lists."""
    for n, sha256 in enumerate(store.iter_digests()):
        if n >= sample:
            return
        try:
            if is_sealed(store, sha256):
                yield sha256
        except BlobNotFound:
            continue
