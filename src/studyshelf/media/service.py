"""Processing jobs in the database: found for new versions, claimed under a lease, finished or failed.

New uploads are found by a query rather than queued by the upload itself, so an upload's transaction holds
no extra work and a version committed while no worker ran is still found (also by `studyshelf media backfill`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from studyshelf.library.blobs import record_blob
from studyshelf.library.listing import register_thumbnail_finder
from studyshelf.library.models import File, FileVersion
from studyshelf.library.sniff import category
from studyshelf.media.models import MediaJob, MediaOutput
from studyshelf.storage import StoredBlob

PROCESSED_KINDS = frozenset({"video", "audio", "pdf", "image"})
MAX_ATTEMPTS = 3
RETRY_BASE = timedelta(minutes=1)  # then ×4: 1 min, 4 min


@dataclass(frozen=True)
class Claimed:
    version_id: uuid.UUID
    kind: str
    content_type: str
    blob_sha256: str
    attempts: int


@dataclass(frozen=True)
class OutputFile:
    path: str
    blob_sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Status:
    """What a file page and the API show of a version's processing."""

    state: str  # none | queued | running | done | failed
    percent: int
    error: str | None
    kind: str | None
    renditions: list[str]
    duration_seconds: float | None
    page_count: int | None
    generation: int
    has_poster: bool
    has_thumbnail: bool


def kind_of(content_type: str) -> str | None:
    """The processing a content type gets, or None."""
    kind = category(content_type)
    return kind if kind in PROCESSED_KINDS else None


def discover(db: Session, *, now: datetime, since: uuid.UUID | None = None) -> int:
    """Queue every current version of a live file that has no job yet (ids from `since` on); return how many."""
    query = (
        select(FileVersion.id, FileVersion.content_type)
        .join(File, File.current_version_id == FileVersion.id)
        .where(File.deleted_at.is_(None), ~exists().where(MediaJob.version_id == FileVersion.id))
    )
    if since is not None:
        query = query.where(FileVersion.id >= since)
    queued = 0
    for version_id, content_type in db.execute(query).all():
        kind = kind_of(content_type)
        if kind is not None:
            db.add(MediaJob(version_id=version_id, kind=kind, next_attempt_at=now, created_at=now, updated_at=now))
            queued += 1
    db.flush()
    return queued


def requeue(db: Session, *, version: FileVersion, now: datetime) -> MediaJob | None:
    """Process a version again (after a failure, or when asked); None when its type is not processed."""
    kind = kind_of(version.content_type)
    if kind is None:
        return None
    job = db.get(MediaJob, version.id)
    if job is None:
        job = MediaJob(version_id=version.id, kind=kind, created_at=now, generation=0)
        db.add(job)
    job.state, job.percent, job.attempts, job.error = "queued", 0, 0, None
    job.next_attempt_at, job.updated_at, job.claimed_by, job.claimed_until = now, now, None, None
    db.flush()
    return job


def requeue_failed(db: Session, *, now: datetime) -> int:
    """Queue every failed job again (after ffmpeg was installed, say); return how many."""
    result = db.execute(
        update(MediaJob)
        .where(MediaJob.state == "failed")
        .values(state="queued", attempts=0, percent=0, error=None, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim(db: Session, *, holder: str, now: datetime, lease: timedelta) -> Claimed | None:
    """Take the next due job (or one whose worker died mid-run) for `holder`, until now + lease."""
    due = or_(
        and_(MediaJob.state == "queued", MediaJob.next_attempt_at <= now),
        and_(MediaJob.state == "running", MediaJob.claimed_until < now),
    )
    candidates = db.execute(
        select(MediaJob.version_id).where(due).order_by(MediaJob.next_attempt_at).limit(5)
    ).scalars()
    for version_id in list(candidates):
        taken = db.execute(
            update(MediaJob)
            .where(MediaJob.version_id == version_id, due)
            .values(
                state="running",
                claimed_by=holder,
                claimed_until=now + lease,
                attempts=MediaJob.attempts + 1,
                percent=0,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            row = db.execute(
                select(MediaJob.kind, MediaJob.attempts, FileVersion.content_type, FileVersion.blob_sha256)
                .join(FileVersion, FileVersion.id == MediaJob.version_id)
                .where(MediaJob.version_id == version_id)
            ).one()
            return Claimed(version_id, row.kind, row.content_type, row.blob_sha256, row.attempts)
    return None


def report_progress(db: Session, *, version_id: uuid.UUID, holder: str, percent: int, now: datetime) -> None:
    db.execute(
        update(MediaJob)
        .where(MediaJob.version_id == version_id, MediaJob.claimed_by == holder, MediaJob.state == "running")
        .values(percent=percent, updated_at=now)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Result:
    duration: float
    width: int
    height: int
    page_count: int | None
    renditions: list[str]
    outputs: list[tuple[str, StoredBlob, str]]  # path, blob, content type


def complete(db: Session, *, version_id: uuid.UUID, holder: str, result: Result, now: datetime) -> bool:
    """Record the outputs (replacing a previous run's) and mark the job done; False if the lease was lost."""
    job = db.get(MediaJob, version_id)
    if job is None or job.claimed_by != holder or job.state != "running":
        return False
    db.execute(delete(MediaOutput).where(MediaOutput.version_id == version_id))
    for path, blob, content_type in result.outputs:
        record_blob(db, blob=blob, now=now)
        db.add(
            MediaOutput(
                version_id=version_id, path=path, blob_sha256=blob.sha256, size=blob.size, content_type=content_type
            )
        )
    job.state, job.percent, job.error, job.claimed_by, job.claimed_until = "done", 100, None, None, None
    job.generation += 1
    job.duration_ms = round(result.duration * 1000) or None
    job.width, job.height = result.width or None, result.height or None
    job.page_count = result.page_count
    job.renditions = " ".join(result.renditions)
    job.updated_at = now
    db.flush()
    return True


def fail(db: Session, *, version_id: uuid.UUID, holder: str, error: str, retry: bool, now: datetime) -> str:
    """Record a failed run: queued again after a back-off while attempts remain and `retry`; return the state."""
    job = db.get(MediaJob, version_id)
    if job is None or job.claimed_by != holder:
        return "lost"
    again = retry and job.attempts < MAX_ATTEMPTS
    job.state = "queued" if again else "failed"
    job.next_attempt_at = now + RETRY_BASE * 4 ** (job.attempts - 1) if again else now
    job.error, job.percent, job.claimed_by, job.claimed_until = error[:1000], 0, None, None
    job.updated_at = now
    db.flush()
    return job.state


def status_of(db: Session, *, version: FileVersion) -> Status:
    """The processing status of a version (`queued` until a worker has found a new upload)."""
    job = db.get(MediaJob, version.id)
    if job is None:
        kind = kind_of(version.content_type)
        return Status("none" if kind is None else "queued", 0, None, kind, [], None, None, 0, False, False)
    paths = set(db.scalars(select(MediaOutput.path).where(MediaOutput.version_id == version.id)))
    return Status(
        state=job.state,
        percent=job.percent,
        error=job.error,
        kind=job.kind,
        renditions=[name for name in job.renditions.split() if name],
        duration_seconds=None if job.duration_ms is None else job.duration_ms / 1000,
        page_count=job.page_count,
        generation=job.generation,
        has_poster="poster.jpg" in paths,
        has_thumbnail="thumb.jpg" in paths,
    )


def outputs_of(db: Session, *, version_id: uuid.UUID) -> dict[str, OutputFile]:
    """Every produced file of a version, by path."""
    rows = db.scalars(select(MediaOutput).where(MediaOutput.version_id == version_id))
    return {row.path: OutputFile(row.path, row.blob_sha256, row.size, row.content_type) for row in rows}


def output(db: Session, *, version_id: uuid.UUID, path: str) -> OutputFile | None:
    row = db.get(MediaOutput, (version_id, path))
    return None if row is None else OutputFile(row.path, row.blob_sha256, row.size, row.content_type)


def done_generation(db: Session, *, version_id: uuid.UUID) -> int | None:
    """The generation of a version's finished outputs, or None while it has none to play."""
    job = db.get(MediaJob, version_id)
    return job.generation if job is not None and job.generation > 0 else None


def thumbnailed(db: Session, file_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Of these files, those whose current version has a thumbnail (one statement for a whole listing)."""
    rows = db.execute(
        select(File.id)
        .join(MediaOutput, MediaOutput.version_id == File.current_version_id)
        .where(File.id.in_(list(file_ids)), MediaOutput.path == "thumb.jpg")
    )
    return {row[0] for row in rows}


register_thumbnail_finder(thumbnailed)
