"""The captions section of a file's page: add (WebVTT or SRT), replace, make default, delete.

Each answers the re-rendered section for HTMX (with a toast), or sends a plain form back to the file page.
Refusals (a malformed file names its line) reach the page as problem details, shown as a toast.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from studyshelf.library import captions
from studyshelf.library.caption_text import normalise_language
from studyshelf.library.captions_api import is_true, receive_caption, store_caption
from studyshelf.library.files import get_file
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal
from studyshelf.partners.permissions import Permission
from studyshelf.partners.principal import Principal
from studyshelf.storage import StoredBlob
from studyshelf.web import i18n
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, request_locale, translated

router = APIRouter(include_in_schema=False)


def captions_context(db: Session, principal: Principal, file_id: uuid.UUID, now: datetime) -> dict[str, object]:
    """What the captions section shows (the file page adds it to its own context)."""
    return {"captions": captions.list_captions(db, principal=principal, file_id=file_id, now=now)}


def _counted(wording: str, cues: int, label: str) -> str:
    """A toast that counts cues, its wording already in the plural form for `cues` (`i18n.ngettext` called with
    literal msgids inside `i18n.use_locale`, so extraction finds them); the count grouped the locale's way
    (1,234 · 1.234)."""
    return wording % {"label": label, "num": i18n.format_number(cues)}


def _changed(
    request: Request, db: Session, principal: Principal, file_id: uuid.UUID, message: str, now: datetime
) -> Response:
    if not is_htmx(request):
        return RedirectResponse(f"/files/{file_id}", status_code=303)
    file = get_file(db, principal=principal, file_id=file_id, now=now)
    context = {"file": file, "can_write": True, **captions_context(db, principal, file_id, now)}
    headers = {"HX-Trigger": json.dumps({"toast": {"message": message}})}
    return render(request, "library/_captions.html", context, headers=headers)


@router.post("/files/{file_id}/captions", response_class=HTMLResponse)
async def add_captions(
    request: Request, file_id: uuid.UUID, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now
) -> Response:
    def check() -> None:
        captions.writable_media_file(db, principal=principal, file_id=file_id, now=now)
        db.commit()

    await run_in_threadpool(check)
    text, fields = await receive_caption(request)
    language = normalise_language(fields.get("language", ""))

    def record(tx: Session, blob: StoredBlob) -> str:
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
        return caption.label

    label = await store_caption(services, text, record)
    with i18n.use_locale(request_locale(request)):
        if text.source_format == "srt":
            wording = i18n.ngettext(
                "Added %(label)s captions: %(num)s cue (converted from SRT).",
                "Added %(label)s captions: %(num)s cues (converted from SRT).",
                text.cues,
            )
        else:
            wording = i18n.ngettext(
                "Added %(label)s captions: %(num)s cue.", "Added %(label)s captions: %(num)s cues.", text.cues
            )
        message = _counted(wording, text.cues, label)
    return await run_in_threadpool(_changed, request, db, principal, file_id, message, now)


@router.post("/files/{file_id}/captions/{caption_id}/replace", response_class=HTMLResponse)
async def replace_captions(
    request: Request,
    file_id: uuid.UUID,
    caption_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> Response:
    def check() -> None:
        captions.get_caption(
            db,
            principal=principal,
            file_id=file_id,
            caption_id=caption_id,
            permission=Permission.LIBRARY_WRITE,
            now=now,
        )
        db.commit()

    await run_in_threadpool(check)
    text, _fields = await receive_caption(request)

    def record(tx: Session, blob: StoredBlob) -> str:
        caption = captions.replace_caption(
            tx, principal=principal, file_id=file_id, caption_id=caption_id, blob=blob, text=text, now=now
        )
        return caption.label

    label = await store_caption(services, text, record)
    with i18n.use_locale(request_locale(request)):
        wording = i18n.ngettext(
            "Replaced the %(label)s captions: %(num)s cue.", "Replaced the %(label)s captions: %(num)s cues.", text.cues
        )
        message = _counted(wording, text.cues, label)
    return await run_in_threadpool(_changed, request, db, principal, file_id, message, now)


@router.post("/files/{file_id}/captions/{caption_id}/default", response_class=HTMLResponse)
def make_default(
    request: Request, file_id: uuid.UUID, caption_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    caption = captions.update_caption(
        db, principal=principal, file_id=file_id, caption_id=caption_id, label=None, default=True, now=now
    )
    message = translated(request, N_("%(label)s captions now show by default."), label=caption.label)
    return _changed(request, db, principal, file_id, message, now)


@router.post("/files/{file_id}/captions/{caption_id}/delete", response_class=HTMLResponse)
def delete_captions(
    request: Request, file_id: uuid.UUID, caption_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    caption = captions.delete_caption(db, principal=principal, file_id=file_id, caption_id=caption_id, now=now)
    message = translated(request, N_("Deleted the %(label)s captions."), label=caption.label)
    return _changed(request, db, principal, file_id, message, now)
