"""JSON routes for a file's captions: list, upload (WebVTT, or SRT converted), replace, relabel, delete.

The bytes are served elsewhere: to members by delivery/captions.py, to viewers through signed media URLs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from studyshelf.core.db import unit_of_work
from studyshelf.library import captions
from studyshelf.library.caption_text import MAX_CAPTION_BYTES, CaptionText, normalise_language, read_caption_file
from studyshelf.library.models import Caption
from studyshelf.library.schemas import CaptionRead, CaptionUpdate
from studyshelf.library.upload import receive_upload
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.storage import StoredBlob
from studyshelf.storage.memory import MemoryBlobStore

router = APIRouter(prefix="/api/v1", tags=["captions"])
T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}


def _upload_body(required: list[str]) -> dict[str, object]:
    properties: dict[str, object] = {
        "file": {"type": "string", "format": "binary", "description": f"WebVTT or SRT, UTF-8, ≤ {MAX_CAPTION_BYTES} B"},
        "language": {"type": "string", "description": "BCP 47 tag: en, de, pt-BR, zh-Hant"},
        "label": {"type": "string", "maxLength": 100, "description": "shown in the player's menu"},
        "default": {"type": "boolean", "description": "show these captions when the viewer opens"},
    }
    if "language" not in required:
        properties = {"file": properties["file"]}
    body = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}


def caption_read(caption: Caption) -> CaptionRead:
    return CaptionRead(
        id=caption.id,
        file_id=caption.file_id,
        language=caption.language,
        label=caption.label,
        default=caption.is_default,
        size=caption.size,
        cues=caption.cues,
        source_format="srt" if caption.source_format == "srt" else "vtt",
        sha256=caption.blob_sha256,
        created_at=caption.created_at,
        updated_at=caption.updated_at,
        content_url=f"/api/v1/files/{caption.file_id}/captions/{caption.id}/content",
    )


async def receive_caption(request: Request) -> tuple[CaptionText, dict[str, str]]:
    """The uploaded caption file, checked and as WebVTT, with the form's other fields (bounded in size)."""
    scratch = MemoryBlobStore()
    received = await receive_upload(request, scratch, max_bytes=MAX_CAPTION_BYTES)
    data = scratch.blobs[received.writer.commit().sha256]
    return read_caption_file(data, filename=received.filename), received.fields


async def _authorise(db: DbSession, principal: Principal, *, file_id: uuid.UUID, now: datetime) -> None:
    def check() -> None:
        captions.writable_media_file(db, principal=principal, file_id=file_id, now=now)
        db.commit()  # release the database before reading the upload

    await run_in_threadpool(check)


async def store_caption(services: Services, text: CaptionText, record: Callable[[Session, StoredBlob], T]) -> T:
    """Write the WebVTT blob, then `record` the rows; the blob is published just before they commit."""
    writer = await run_in_threadpool(captions.write_caption_blob, services.blobs, text)
    blob = StoredBlob(sha256=writer.sha256, size=writer.size)

    def recorded() -> T:
        try:
            with unit_of_work(services.write_sessions) as tx:
                result = record(tx, blob)
                writer.commit()  # rows are valid: publish the bytes, then the transaction commits
                return result
        except BaseException:
            writer.abort()
            raise

    return await run_in_threadpool(recorded)


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


@router.get("/files/{file_id}/captions", response_model=list[CaptionRead])
def list_captions(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> list[CaptionRead]:
    """A file's captions, the default first."""
    return [caption_read(c) for c in captions.list_captions(db, principal=principal, file_id=file_id, now=now)]


@router.post(
    "/files/{file_id}/captions",
    response_model=CaptionRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_upload_body(["file", "language"]),
)
async def upload_caption(
    file_id: uuid.UUID, request: Request, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now
) -> CaptionRead:
    """Add captions in one language to a video or audio file: WebVTT, or SRT (stored converted to WebVTT).

    A file that is not UTF-8 or not valid WebVTT/SRT is refused (422 `caption-invalid`, naming the line), as is
    a language that is not a BCP 47 tag (422 `caption-language-invalid`); a language the file has already is a
    409 `caption-exists` (replace it with PUT).
    """
    await _authorise(db, principal, file_id=file_id, now=now)
    text, fields = await receive_caption(request)
    language = normalise_language(fields.get("language", ""))

    def record(tx: Session, blob: StoredBlob) -> CaptionRead:
        caption = captions.add_caption(
            tx,
            principal=principal,
            file_id=file_id,
            blob=blob,
            text=text,
            language=language,
            label=fields.get("label"),
            default=is_true(fields.get("default")),
            now=now,
        )
        return caption_read(caption)

    return await store_caption(services, text, record)


@router.put(
    "/files/{file_id}/captions/{caption_id}",
    response_model=CaptionRead,
    openapi_extra=_upload_body(["file"]),
)
async def replace_caption(
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> CaptionRead:
    """Replace one language's captions with a new file (checked as on upload); label and default stay."""
    await _authorise(db, principal, file_id=file_id, now=now)
    text, _fields = await receive_caption(request)

    def record(tx: Session, blob: StoredBlob) -> CaptionRead:
        caption = captions.replace_caption(
            tx, principal=principal, file_id=file_id, caption_id=caption_id, blob=blob, text=text, now=now
        )
        return caption_read(caption)

    return await store_caption(services, text, record)


@router.patch("/files/{file_id}/captions/{caption_id}", response_model=CaptionRead)
def update_caption(
    file_id: uuid.UUID, caption_id: uuid.UUID, body: CaptionUpdate, principal: CurrentPrincipal, db: DbSession, now: Now
) -> CaptionRead:
    """Change the label, or make these captions the default (`default: true`; false: none is the default)."""
    caption = captions.update_caption(
        db, principal=principal, file_id=file_id, caption_id=caption_id, label=body.label, default=body.default, now=now
    )
    return caption_read(caption)


@router.delete("/files/{file_id}/captions/{caption_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_caption(
    file_id: uuid.UUID, caption_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now
) -> Response:
    """Remove one language's captions."""
    captions.delete_caption(db, principal=principal, file_id=file_id, caption_id=caption_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
