"""Caption bytes: to members on the file page (their session), to viewers through signed media URLs.

A caption's signed URL is a media URL like the video's (signing/media.py): its id stands where a version id
stands, its blob's digest and size, `text/vtt`, inline. The /m/ middleware serves it as it serves the video:
no database, the same expiry, the same renewal (viewing.media_urls signs the tracks with the media).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from studyshelf.delivery.streaming import BlobResponse, Representation
from studyshelf.library.captions import CaptionTrack, get_caption
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.signing import MediaClaims

router = APIRouter(prefix="/api/v1", tags=["captions"])
VTT = "text/vtt"


def track_filename(filename: str, language: str) -> str:
    """`lecture.de.vtt` for `lecture.mp4` in German (the name the media URL carries)."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return f"{stem[:200] or 'captions'}.{language}.vtt"


def track_claims(track: CaptionTrack, *, scope_id: str, filename: str, expires: int) -> MediaClaims:
    return MediaClaims(
        expires=expires,
        link_id=scope_id,
        version_id=track.id,
        sha256=track.sha256,
        size=track.size,
        modified=track.modified,
        content_type=VTT,
        download=False,
        filename=track_filename(filename, track.language),
    )


def track_urls(
    sign: Callable[[MediaClaims], str], tracks: list[CaptionTrack], *, scope_id: str, filename: str, expires: int
) -> list[dict[str, Any]]:
    """The tracks as the viewer page and its renewals carry them: language, label, default, signed URL."""
    return [
        {
            "id": t.id,
            "language": t.language,
            "label": t.label,
            "default": t.is_default,
            "url": sign(track_claims(t, scope_id=scope_id, filename=filename, expires=expires)),
        }
        for t in tracks
    ]


@router.get("/files/{file_id}/captions/{caption_id}/content", response_class=Response)
async def caption_content(
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> Response:
    """One language's captions as WebVTT (members who may read the file)."""

    def load() -> Representation:
        caption = get_caption(db, principal=principal, file_id=file_id, caption_id=caption_id, now=now)
        return Representation(
            sha256=caption.blob_sha256,
            size=caption.size,
            content_type=VTT,
            filename=f"{caption.language}.vtt",
            last_modified=caption.updated_at,
        )

    rep = await run_in_threadpool(load)
    return BlobResponse(
        request,
        services.blobs,
        rep,
        download=False,
        cache_control="private, no-cache",
        accel_redirect=services.settings.accel_redirect,
    )
