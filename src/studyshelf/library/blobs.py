"""Content-addressed blobs: recording one once, and which are no longer used (bytes live in the blob store)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.core.db import Base
from studyshelf.library.models import Blob, Caption, FileVersion
from studyshelf.storage import StoredBlob


def record_blob(db: Session, *, blob: StoredBlob, now: datetime) -> None:
    """Register a stored blob once, even when two uploads of the same bytes race."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(Blob).values(sha256=blob.sha256, size=blob.size, created_at=now).on_conflict_do_nothing())


def unreferenced_blobs(db: Session) -> list[str]:
    """Blobs no row points at any more (safe to delete from the store).

    A version's bytes, and whatever else names a blob by a foreign key (media renditions, posters): every
    table registered with a key to `blobs.sha256` keeps its blobs, without this module knowing the tables.
    """
    referring = [
        fk.parent
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.target_fullname == "blobs.sha256"
    ]
    kept = [Blob.sha256.not_in(select(column)) for column in referring] or [
        Blob.sha256.not_in(select(FileVersion.blob_sha256))
    ]
    return list(db.scalars(select(Blob.sha256).where(*kept)))


def forget_blobs(db: Session, *, digests: list[str]) -> None:
    """Delete the rows of blobs whose bytes are about to go."""
    if digests:
        db.execute(delete(Blob).where(Blob.sha256.in_(digests)))
        db.flush()


def known_blob(db: Session, sha256: str) -> bool:
    """Whether a row knows this blob (an upload may have recorded it again since it was forgotten)."""
    return db.get(Blob, sha256) is not None


def known_digests(db: Session) -> set[str]:
    """Every blob a row knows of (what the store may keep)."""
    return set(db.scalars(select(Blob.sha256)))


def version_blobs_since(db: Session, *, since: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """Versions and captions whose id is `since` or later (ids are time-ordered UUIDv7s: index ranges), with
    their blobs. A replaced caption keeps its id, so its new blob waits for the full sync."""
    versions = select(FileVersion.id, FileVersion.blob_sha256).where(FileVersion.id >= since)
    captions = select(Caption.id, Caption.blob_sha256).where(Caption.id >= since)
    rows = db.execute(versions.union_all(captions)).all()
    return sorted((uuid.UUID(str(item_id)), digest) for item_id, digest in rows)
