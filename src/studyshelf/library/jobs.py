"""Library housekeeping: purge the trash, collect unreferenced blobs, clean up after crashes."""

from __future__ import annotations

from datetime import timedelta

from studyshelf.core.db import unit_of_work
from studyshelf.library import blobs, trash
from studyshelf.services import Services


def purge_trash(services: Services, *, retention_days: int | None = None) -> tuple[int, int]:
    """Purge trash older than the retention; return (items purged, blobs deleted)."""
    days = services.settings.trash_retention_days if retention_days is None else retention_days
    with unit_of_work(services.write_sessions) as db:
        purged = trash.purge_trash(db, older_than=services.clock.now() - timedelta(days=days))
        digests = blobs.unreferenced_blobs(db)
        blobs.forget_blobs(db, digests=digests)
    # Bytes go only after the rows are gone, so a crash here leaves an orphan, never a dangling row; and
    # only if no upload of the same bytes has recorded them again meanwhile (it also rewrites the file).
    deleted = 0
    for digest in digests:
        with unit_of_work(services.read_sessions) as db:
            if blobs.known_blob(db, digest):
                continue
        services.blobs.delete(digest)
        deleted += 1
    return purged, deleted


def recover_storage(services: Services) -> int:
    """At start: remove temporary files of interrupted uploads, and, on the embedded database, orphan blobs.

    The embedded database means a single instance, so no other process can be committing an upload
    right now; with several instances orphans are left to `collect_orphans`, which waits a pass.
    """
    removed = services.blobs.recover()
    if not services.settings.is_embedded_database:
        return removed
    with unit_of_work(services.read_sessions) as db:
        known = blobs.known_digests(db)
    for digest in services.blobs.iter_digests():
        if digest not in known:
            services.blobs.delete(digest)
            removed += 1
    return removed


def collect_orphans(services: Services, memo: str) -> str:
    """Delete blobs no row knows that were orphans on the previous pass too (so never a blob mid-upload).

    `memo` carries the previous pass's orphans; the return value is this pass's.
    """
    services.blobs.recover()
    with unit_of_work(services.read_sessions) as db:
        known = blobs.known_digests(db)
    orphans = {digest for digest in services.blobs.iter_digests() if digest not in known}
    previous = set(memo.split()) if memo else set()
    for digest in orphans & previous:
        services.blobs.delete(digest)
    return " ".join(sorted(orphans - previous))
