"""JSON routes of media processing: a file's processing status, and processing it again."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from pydantic import BaseModel

from studyshelf.core.errors import Invalid
from studyshelf.library import files
from studyshelf.media import service
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now
from studyshelf.partners.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["media"])


class ProcessingRead(BaseModel):
    """The processing of a file's current version: `state` is none (not processed: a document), queued,
    running (with `percent`), done or failed (with `error`; the original stays downloadable and playable)."""

    version_id: uuid.UUID
    state: str
    percent: int
    error: str | None
    kind: str | None
    renditions: list[str]
    duration_seconds: float | None
    page_count: int | None
    poster_url: str | None
    thumbnail_url: str | None


def processing_read(file_id: uuid.UUID, version_id: uuid.UUID, found: service.Status) -> ProcessingRead:
    previews = f"/api/v1/files/{file_id}/previews"
    return ProcessingRead(
        version_id=version_id,
        state=found.state,
        percent=found.percent,
        error=found.error,
        kind=found.kind,
        renditions=found.renditions,
        duration_seconds=found.duration_seconds,
        page_count=found.page_count,
        poster_url=f"{previews}/poster.jpg" if found.has_poster else None,
        thumbnail_url=f"{previews}/thumb.jpg" if found.has_thumbnail else None,
    )


@router.get("/files/{file_id}/processing", response_model=ProcessingRead)
def get_processing(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> ProcessingRead:
    """The processing status of the file's current version (renditions, poster, thumbnail, page count)."""
    file = files.get_file(db, principal=principal, file_id=file_id, now=now)
    assert file.current_version is not None
    return processing_read(file.id, file.current_version.id, service.status_of(db, version=file.current_version))


@router.post("/files/{file_id}/processing", response_model=ProcessingRead, status_code=status.HTTP_202_ACCEPTED)
def reprocess(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> ProcessingRead:
    """Process the current version again (after a failure, or with a newer ffmpeg); editors only."""
    file = files.get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, now=now)
    version = file.current_version
    assert version is not None
    if service.requeue(db, version=version, now=now) is None:
        raise Invalid(f"Files of type {version.content_type} are not processed.")
    return processing_read(file.id, version.id, service.status_of(db, version=version))
