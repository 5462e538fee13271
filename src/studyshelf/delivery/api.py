"""Members' downloads: a file's current bytes, or any version's."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from studyshelf.delivery.streaming import BlobResponse, Representation
from studyshelf.library import service as library
from studyshelf.library.models import File, FileVersion
from studyshelf.partners.deps import CurrentPrincipal, DbSession, ServicesDep

router = APIRouter(prefix="/api/v1", tags=["delivery"])

_BYTES_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "The bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "A byte range", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    304: {"description": "Not modified"},
    412: {"description": "Precondition failed"},
    416: {"description": "Range not satisfiable"},
}


def _representation(file: File, version: FileVersion) -> Representation:
    return Representation(
        sha256=version.blob_sha256,
        size=version.size,
        content_type=version.content_type,
        filename=file.name,
        last_modified=version.created_at,
    )


@router.api_route("/files/{file_id}/content", methods=["GET", "HEAD"], response_class=Response, responses=_BYTES_RESPONSES)
def file_content(file_id: uuid.UUID, request: Request, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, download: bool = False) -> Response:
    """The current version's bytes (Range, conditional requests; `?download=1` for an attachment)."""
    file = library.get_file(db, principal=principal, file_id=file_id)
    assert file.current_version is not None
    rep = _representation(file, file.current_version)
    return BlobResponse(request, services.blobs, rep, download=download, cache_control="private, no-cache")


@router.api_route(
    "/files/{file_id}/versions/{version_id}/content", methods=["GET", "HEAD"], response_class=Response, responses=_BYTES_RESPONSES
)
def version_content(
    file_id: uuid.UUID, version_id: uuid.UUID, request: Request, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, download: bool = False
) -> Response:
    """One version's bytes; versions never change, so they may be cached for long."""
    file, version = library.get_version(db, principal=principal, file_id=file_id, version_id=version_id)
    rep = _representation(file, version)
    return BlobResponse(request, services.blobs, rep, download=download, cache_control="private, max-age=31536000, immutable")
