"""Blobs as files on local disk: blobs/ab/cd/<sha256>, written via tmp/ + fsync + rename.

The one change made in place is `replace_tail` (a key rotation's new trailer), journalled in
blobs/ab/cd/<sha256>.tail so that `recover` finishes it after a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from studyshelf.storage.interface import BlobNotFound, StoredBlob, TailChanged, WriterTally

TAIL_JOURNAL = ".tail"
_JOURNAL_CHECK = hashlib.sha256().digest_size


def _valid_digest(sha256: str) -> bool:
    return len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)


class LocalBlobWriter(WriterTally):
    def __init__(self, store: LocalBlobStore) -> None:
        super().__init__()
        self._store = store
        self._tmp_path = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        self._fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        # The lock marks the temporary file as owned by a live writer; recover() skips it.
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._closed = False

    def sync(self) -> None:
        os.fsync(self._fd)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._count(chunk)

    def commit(self) -> StoredBlob:
        return self.commit_as(self._hash.hexdigest())

    def commit_as(self, digest: str) -> StoredBlob:
        os.fsync(self._fd)
        final = self._store.path_for(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Always replace, even when identical bytes are there: if a purge deleted them a moment ago,
        # the upload that is about to refer to them puts them back.
        os.replace(self._tmp_path, final)
        _fsync_dir(final.parent)
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

    def replace_tail(self, sha256: str, old_tail: bytes, new_tail: bytes) -> None:
        """Overwrite the blob's last bytes in place, journalled first so that `recover` can finish a torn write.

        The check and the write go through one open file: if the blob is replaced (renamed over) meanwhile,
        the write lands in the old, unlinked file and the new blob is left alone.
        """
        if len(old_tail) != len(new_tail) or not old_tail:
            raise ValueError("the old and new tails must be non-empty and of equal length")
        path = self.path_for(sha256)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        try:
            journal = _journal_path(path)
            journal_fd = _write_journal(journal, old_tail, new_tail)
            try:
                at = os.fstat(fd).st_size - len(old_tail)
                if at < 0 or os.pread(fd, len(old_tail), at) != old_tail:
                    _remove_journal(journal)
                    raise TailChanged(sha256)
                _pwrite_all(fd, new_tail, at)
                os.fsync(fd)
                _remove_journal(journal)
            finally:
                os.close(journal_fd)
        finally:
            os.close(fd)

    def recover(self) -> int:
        """Remove abandoned temporary files and finish interrupted tail replacements; return how many."""
        return self._remove_abandoned_parts() + self._finish_tail_journals()

    def _finish_tail_journals(self) -> int:
        finished = 0
        for journal in self.root.glob(f"??/??/*{TAIL_JOURNAL}"):
            try:
                fd = os.open(journal, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live replace_tail holds it
                if not _same_file(fd, journal):
                    continue  # finished and removed meanwhile; the path now names another replacement's journal
                tails = _read_journal(fd)
                if tails is not None:
                    _finish_tail(journal.with_suffix(""), *tails)
                _remove_journal(journal)
                finished += 1
            finally:
                os.close(fd)
        return finished

    def _remove_abandoned_parts(self) -> int:
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


def _journal_path(blob: Path) -> Path:
    return blob.with_name(blob.name + TAIL_JOURNAL)


def _write_journal(journal: Path, old_tail: bytes, new_tail: bytes) -> int:
    """Write old ‖ new ‖ SHA-256 of both, durably, and hold it locked; the open descriptor is returned.

    The checksum tells a journal torn by a crash (the blob was not touched yet) from a complete one.
    Refuses (FileExistsError) while another replacement of the same blob is journalled.
    """
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        body = old_tail + new_tail
        _pwrite_all(fd, body + hashlib.sha256(body).digest(), 0)
        os.fsync(fd)
        _fsync_dir(journal.parent)
    except BaseException:
        os.close(fd)
        journal.unlink(missing_ok=True)
        raise
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read_journal(fd: int) -> tuple[bytes, bytes] | None:
    """The (old, new) tails of a complete journal; None for one torn while being written."""
    data = b""
    while chunk := os.read(fd, 1 << 16):
        data += chunk
    body, check = data[:-_JOURNAL_CHECK], data[-_JOURNAL_CHECK:]
    if len(data) <= _JOURNAL_CHECK or len(body) % 2 or hashlib.sha256(body).digest() != check:
        return None
    half = len(body) // 2
    return body[:half], body[half:]


def _finish_tail(blob: Path, old_tail: bytes, new_tail: bytes) -> None:
    """Write new_tail over a blob that still ends with old_tail or a torn mix of both; else leave it alone."""
    try:
        fd = os.open(blob, os.O_RDWR)
    except FileNotFoundError:
        return  # deleted since
    try:
        at = os.fstat(fd).st_size - len(new_tail)
        current = os.pread(fd, len(new_tail), at) if at >= 0 else b""
        ours = len(current) == len(new_tail) and all(
            c in (o, n) for c, o, n in zip(current, old_tail, new_tail, strict=True)
        )  # the old tail, the new one, or a mix of both torn by the crash: anything else is another blob now
        if ours and current != new_tail:
            _pwrite_all(fd, new_tail, at)
            os.fsync(fd)
    finally:
        os.close(fd)


def _remove_journal(journal: Path) -> None:
    journal.unlink(missing_ok=True)
    _fsync_dir(journal.parent)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
