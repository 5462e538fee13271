"""The processing panel of a file page: a progress bar that refreshes itself while the job runs (HTMX)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studyshelf.library import files
from studyshelf.media import service
from studyshelf.media.api import processing_read
from studyshelf.partners.deps import DbSession, Now
from studyshelf.partners.pages import PagePrincipal
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/files/{file_id}/processing", response_class=HTMLResponse)
def processing_panel(
    request: Request, file_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    file = files.get_file(db, principal=principal, file_id=file_id, now=now)
    assert file.current_version is not None
    found = processing_read(file.id, file.current_version.id, service.status_of(db, version=file.current_version))
    return render(request, "media/processing.html", {"file": file, "processing": found})
