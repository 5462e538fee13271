"""Captions of video and audio files: one WebVTT track per language, stored as blobs, one of them the default.

Writes check `library:write` on the file (as a new version does); reads check `library:read`. The viewer
reads a file's tracks through `tracks_of` after its own scope has admitted the file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, Invalid, NotFound
from studyshelf.library import blobs, changes
from studyshelf.library.caption_text import MAX_LABEL, CaptionText, default_label
from studyshelf.library.files import get_file
from studyshelf.library.models import Caption, File
from studyshelf.library.sniff import category
from studyshelf.partners.permissions import Permission
from studyshelf.partners.principal import Principal
from studyshelf.storage import BlobStore, BlobWriter, StoredBlob

CAPTIONED_KINDS = frozenset({"video", "audio"})
MAX_TRACKS = 40


class CaptionExists(Conflict):
    type_slug = "caption-exists"
    title = "Captions in this language exist already"


class NotCaptionable(Invalid):
    type_slug = "caption-not-media"
    title = "Only video and audio files have captions"


@dataclass(frozen=True)
class CaptionTrack:
    """A caption as the viewer shows it: a <track> and a transcript language."""

    id: str
    language: str
    label: str
    is_default: bool
    sha256: str
    size: int
    modified: int  # epoch seconds: the signed URL's Last-Modified


def tracks_of(db: Session, file_id: uuid.UUID | str) -> list[CaptionTrack]:
    """The file's captions, the default first, then by label (no permission check: the caller's scope did it)."""
    rows = db.scalars(
        select(Caption)
        .where(Caption.file_id == uuid.UUID(str(file_id)))
        .order_by(Caption.is_default.desc(), Caption.label, Caption.language)
    )
    return [
        CaptionTrack(
            id=str(c.id),
            language=c.language,
            label=c.label,
            is_default=c.is_default,
            sha256=c.blob_sha256,
            size=c.size,
            modified=int(c.updated_at.timestamp()),
        )
        for c in rows
    ]


def list_captions(db: Session, *, principal: Principal, file_id: uuid.UUID, now: datetime) -> list[Caption]:
    file = get_file(db, principal=principal, file_id=file_id, now=now)
    query = select(Caption).where(Caption.file_id == file.id).order_by(Caption.is_default.desc(), Caption.label)
    return list(db.scalars(query))


def get_caption(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    permission: Permission = Permission.LIBRARY_READ,
    now: datetime,
) -> Caption:
    """A caption of a file the principal may act on; NotFound for another file's caption."""
    file = get_file(db, principal=principal, file_id=file_id, permission=permission, now=now)
    caption = db.get(Caption, caption_id)
    if caption is None or caption.file_id != file.id:
        raise NotFound("No such captions on this file.")
    return caption


def writable_media_file(db: Session, *, principal: Principal, file_id: uuid.UUID, now: datetime) -> File:
    """The video or audio file the principal may caption (checked before the upload is read)."""
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, now=now)
    version = file.current_version
    if version is None or category(version.content_type) not in CAPTIONED_KINDS:
        raise NotCaptionable("Captions go with video and audio files; this file is neither.")
    return file


def add_caption(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    blob: StoredBlob,
    text: CaptionText,
    language: str,
    label: str | None,
    default: bool,
    now: datetime,
) -> Caption:
    """Add the captions of one language (CaptionExists if the file has them: replace those instead)."""
    file = writable_media_file(db, principal=principal, file_id=file_id, now=now)
    existing = db.scalars(select(Caption.language).where(Caption.file_id == file.id)).all()
    if language in existing:
        raise CaptionExists(f"This file has {language} captions already; replace them or choose another language.")
    if len(existing) >= MAX_TRACKS:
        raise Invalid(f"A file may have at most {MAX_TRACKS} caption languages.")
    blobs.record_blob(db, blob=blob, now=now)
    caption = Caption(
        file_id=file.id,
        language=language,
        label=_label(label, language),
        is_default=False,
        blob_sha256=blob.sha256,
        size=blob.size,
        cues=text.cues,
        source_format=text.source_format,
        created_by=principal.user.id,
        created_at=now,
        updated_at=now,
    )
    db.add(caption)
    db.flush()
    if default:
        _make_default(db, caption)
    changes.record(db, principal, "file.captions_added", file, after={"language": language, "sha256": blob.sha256})
    return caption


def replace_caption(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    blob: StoredBlob,
    text: CaptionText,
    now: datetime,
) -> Caption:
    """Put a new file in place of a language's captions (label and default stay)."""
    caption = get_caption(
        db, principal=principal, file_id=file_id, caption_id=caption_id, permission=Permission.LIBRARY_WRITE, now=now
    )
    blobs.record_blob(db, blob=blob, now=now)
    before = caption.blob_sha256
    caption.blob_sha256, caption.size, caption.cues = blob.sha256, blob.size, text.cues
    caption.source_format, caption.updated_at = text.source_format, now
    db.flush()
    file = db.get(File, caption.file_id)
    assert file is not None
    changes.record(
        db,
        principal,
        "file.captions_replaced",
        file,
        before={"language": caption.language, "sha256": before},
        after={"language": caption.language, "sha256": blob.sha256},
    )
    return caption


def update_caption(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    label: str | None,
    default: bool | None,
    now: datetime,
) -> Caption:
    """Change a caption's label, or make it the default (or no longer the default)."""
    caption = get_caption(
        db, principal=principal, file_id=file_id, caption_id=caption_id, permission=Permission.LIBRARY_WRITE, now=now
    )
    if label is not None:
        caption.label = _label(label, caption.language)
    if default is True:
        _make_default(db, caption)
    elif default is False:
        caption.is_default = False
    caption.updated_at = now
    db.flush()
    return caption


def delete_caption(
    db: Session, *, principal: Principal, file_id: uuid.UUID, caption_id: uuid.UUID, now: datetime
) -> Caption:
    """Remove a language's captions (the blob goes with the next collection if nothing else uses it)."""
    caption = get_caption(
        db, principal=principal, file_id=file_id, caption_id=caption_id, permission=Permission.LIBRARY_WRITE, now=now
    )
    file = db.get(File, caption.file_id)
    assert file is not None
    changes.record(db, principal, "file.captions_deleted", file, before={"language": caption.language})
    db.delete(caption)
    db.flush()
    return caption


def write_caption_blob(store: BlobStore, text: CaptionText) -> BlobWriter:
    """The WebVTT bytes written durably, not yet published (commit it just before the rows commit)."""
    writer = store.writer()
    try:
        writer.write(text.vtt)
        writer.sync()
    except BaseException:
        writer.abort()
        raise
    return writer


def _make_default(db: Session, caption: Caption) -> None:
    db.execute(
        update(Caption)
        .where(Caption.file_id == caption.file_id, Caption.id != caption.id, Caption.is_default.is_(True))
        .values(is_default=False)
    )
    caption.is_default = True
    db.flush()


def _label(label: str | None, language: str) -> str:
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise Invalid.for_field("label", f"A label may be at most {MAX_LABEL} characters.")
    return label or default_label(language)
