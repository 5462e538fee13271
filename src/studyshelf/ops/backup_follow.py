"""Blobs follow their file versions into the backup within about a second of the commit.

`backup replicate` polls for file versions newer than its cursor (ids are UUIDv7s stamped when the version is
made, so the query is an index range) and copies their blobs, checked, when the backup lacks them. A version's
id is stamped before its transaction commits, so each poll looks back `OVERLAP_MS` and skips the versions it
has handled. The query is one short read (no lock is held while copying), and nothing runs on a request.
Each poll that copied something writes a followed-blob manifest, so prune keeps those blobs and a PostgreSQL
restore finds them before the next full blob manifest.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from studyshelf.core.errors import BlobIntegrityError
from studyshelf.core.ids import uuid7
from studyshelf.library.blobs import version_blobs_since
from studyshelf.ops.backup_blobs import BlobCopyFailed, copy_blob
from studyshelf.ops.backup_store import BackupLocation, point_id
from studyshelf.services import Services
from studyshelf.storage.interface import BlobNotFound

OVERLAP_MS = 30_000  # a version committed up to this long after its id was stamped is still found

Report = Callable[[Exception], None]


def _unix_ms(version_id: uuid.UUID) -> int:
    return version_id.int >> 80


class BlobFollower:
    """Copies the blobs of new file versions into the backup location, one poll at a time."""

    def __init__(
        self, services: Services, location: BackupLocation, *, start_ms: int | None = None, report: Report = print
    ) -> None:
        self._services = services
        self._location = location
        self._report = report
        self._cursor_ms = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        self._handled: dict[uuid.UUID, int] = {}  # versions seen within the overlap, with their milliseconds

    def poll(self) -> int:
        """Copy the blobs of the versions committed since the last poll; return how many were copied.

        A blob that is gone from the store (its version purged meanwhile) or fails its check is reported and
        left to the full sync; a backup location that fails stops the poll, and the next one tries again.
        """
        since = uuid7(max(self._cursor_ms - OVERLAP_MS, 0), 0)  # the lowest UUIDv7 of that millisecond
        with self._services.read_sessions() as db:
            versions = version_blobs_since(db, since=since)
        copied: dict[str, int] = {}
        try:
            for version_id, digest in versions:
                if version_id not in self._handled:
                    self._follow(digest, copied)
                    self._handled[version_id] = _unix_ms(version_id)
                    self._cursor_ms = max(self._cursor_ms, _unix_ms(version_id))
        finally:
            if copied:  # what did get copied is recorded even when a later copy failed
                self._location.write_blob_manifest(point_id(self._services.clock.now()), copied, followed=True)
        floor = self._cursor_ms - OVERLAP_MS
        self._handled = {version_id: ms for version_id, ms in self._handled.items() if ms >= floor}
        return len(copied)

    def _follow(self, digest: str, copied: dict[str, int]) -> None:
        target = self._location.blobs
        if digest in copied or target.exists(digest):
            return
        try:
            copy_blob(self._services.blobs, target, digest)
            copied[digest] = self._services.blobs.size(digest)
        except (BlobNotFound, BlobCopyFailed, BlobIntegrityError) as exc:
            self._report(exc)


def follow_until(follower: BlobFollower, stop: threading.Event, *, every: float, report: Report) -> None:
    """Poll every `every` seconds until `stop` is set; a failed poll is reported and tried again."""
    while not stop.is_set():
        try:
            follower.poll()
        except Exception as exc:  # noqa: BLE001 - a full or unreachable location: say so, keep following
            report(exc)
        stop.wait(every)
