"""JSON routes for the library: me, folders, files, versions, trash."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from studyshelf.core.clock import as_utc
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Invalid
from studyshelf.library import access, files, folders, listing, trash
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.library.schemas import (
    ChildrenPage,
    Crumb,
    EntryRead,
    FileRead,
    FileUpdate,
    FolderCreate,
    FolderRead,
    FolderUpdate,
    MeRead,
    MyOrgRead,
    OnConflict,
    TrashItemRead,
    VersionRead,
)
from studyshelf.library.sniff import category
from studyshelf.library.upload import receive_upload
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.permissions import Permission, role_in
from studyshelf.partners.principal import Principal
from studyshelf.partners.schemas import OrgRead, UserRead
from studyshelf.storage import StoredBlob

router = APIRouter(prefix="/api/v1", tags=["library"])
OnConflictQuery = Annotated[OnConflict, Query(description="`rename` picks a free name instead of answering 409.")]
MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def folder_read(db: DbSession, principal: Principal, folder: Folder, now: datetime) -> FolderRead:
    path = [Crumb(id=f.id, name=f.name) for f in access.visible_path(db, viewer=principal, folder=folder, now=now)]
    return FolderRead(
        **{k: getattr(folder, k) for k in ("id", "org_id", "parent_id", "name", "created_at", "updated_at")}, path=path
    )


def file_read(file: File) -> FileRead:
    version = file.current_version
    assert version is not None
    return FileRead(
        id=file.id,
        org_id=file.org_id,
        folder_id=file.folder_id,
        name=file.name,
        size=version.size,
        content_type=version.content_type,
        category=category(version.content_type),
        sha256=version.blob_sha256,
        version=version.number,
        created_at=file.created_at,
        updated_at=file.updated_at,
        content_url=f"/api/v1/files/{file.id}/content",
    )


def version_read(version: FileVersion) -> VersionRead:
    return VersionRead(
        id=version.id,
        number=version.number,
        size=version.size,
        content_type=version.content_type,
        sha256=version.blob_sha256,
        created_at=version.created_at,
        content_url=f"/api/v1/files/{version.file_id}/versions/{version.id}/content",
    )


@router.get("/me", response_model=MeRead)
def me(principal: CurrentPrincipal, db: DbSession) -> MeRead:
    """Who you are, and your organisations, each with its root folder."""
    orgs = []
    for membership in sorted(principal.user.memberships, key=lambda m: m.organization.name):
        role = role_in(principal, membership.org_id)
        if role is not None:
            root = folders.get_root_folder(db, org_id=membership.org_id)
            orgs.append(
                MyOrgRead(
                    **OrgRead.model_validate(membership.organization).model_dump(), role=role, root_folder_id=root.id
                )
            )
    current = principal.session.current_org_id if principal.session else None
    if current not in {o.id for o in orgs}:
        current = orgs[0].id if orgs else None
    return MeRead(user=UserRead.model_validate(principal.user), organizations=orgs, current_org_id=current)


@router.post("/folders", response_model=FolderRead, status_code=status.HTTP_201_CREATED)
def create_folder(
    body: FolderCreate, principal: CurrentPrincipal, db: DbSession, now: Now, on_conflict: OnConflictQuery = "fail"
) -> FolderRead:
    """Create a folder inside another."""
    folder = folders.create_folder(
        db, principal=principal, parent_id=body.parent_id, name=body.name, on_conflict=on_conflict, now=now
    )
    return folder_read(db, principal, folder, now=now)


@router.get("/folders/{folder_id}", response_model=FolderRead)
def get_folder(folder_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> FolderRead:
    """A folder with its path from the root."""
    return folder_read(
        db, principal, folders.get_folder(db, principal=principal, folder_id=folder_id, now=now), now=now
    )


def _cursor_key_fits(sort: str | None, key: object) -> bool:
    """A cursor's key must have the type its sort compares (else the query fails, on PostgreSQL too)."""
    if sort == "size":
        return type(key) is int and 0 <= key < 2**63
    if not isinstance(key, str) or "\x00" in key:
        return sort is None and type(key) is int
    if sort == "updated_at":
        as_utc(datetime.fromisoformat(key))  # raises ValueError/OverflowError when it is no timestamp
    return True


def _decode_cursor(cursor: str | None, sort: str | None = None) -> listing.Cursor | None:
    if cursor is None:
        return None
    try:
        kind, key, item_id = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
        if not isinstance(item_id, str) or kind not in (0, 1) or not _cursor_key_fits(sort, key):
            raise ValueError
        uuid.UUID(item_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid("The cursor is not valid; start again without it.") from exc
    return (int(kind), key, str(item_id))


def _encode_cursor(cursor: listing.Cursor | None) -> str | None:
    return None if cursor is None else base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


@router.get("/folders/{folder_id}/children", response_model=ChildrenPage)
def list_children(
    folder_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    sort: Literal["name", "size", "updated_at"] = "name",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ChildrenPage:
    """A folder's children, folders first, sorted, one page at a time."""
    entries, next_cursor = listing.list_children(
        db,
        principal=principal,
        folder_id=folder_id,
        sort=sort,
        descending=order == "desc",
        after=_decode_cursor(cursor, sort),
        limit=limit,
        now=now,
    )
    items = [
        EntryRead(kind=e.kind, id=e.id, name=e.name, size=e.size, content_type=e.content_type, updated_at=e.updated_at)
        for e in entries
    ]
    return ChildrenPage(items=items, next_cursor=_encode_cursor(next_cursor))


@router.patch("/folders/{folder_id}", response_model=FolderRead)
def update_folder(
    folder_id: uuid.UUID,
    body: FolderUpdate,
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    on_conflict: OnConflictQuery = "fail",
) -> FolderRead:
    """Rename and/or move a folder."""
    if body.name is None and body.parent_id is None:
        raise Invalid("Give a new name, a new parent_id, or both.")
    folder = folders.get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, now=now
    )
    if body.parent_id is not None:
        folder = folders.move_folder(
            db, principal=principal, folder_id=folder_id, target_id=body.parent_id, on_conflict=on_conflict, now=now
        )
    if body.name is not None:
        folder = folders.rename_folder(db, principal=principal, folder_id=folder_id, name=body.name, now=now)
    return folder_read(db, principal, folder, now=now)


@router.delete("/folders/{folder_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_folder(folder_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """Move a folder and everything in it to the trash."""
    folders.delete_folder(db, principal=principal, folder_id=folder_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/folders/{folder_id}/restore", response_model=FolderRead)
def restore_folder(
    folder_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now, on_conflict: OnConflictQuery = "fail"
) -> FolderRead:
    """Bring a folder back from the trash."""
    folder = trash.restore(db, principal=principal, kind="folder", item_id=folder_id, on_conflict=on_conflict, now=now)
    assert isinstance(folder, Folder)
    return folder_read(db, principal, folder, now=now)


async def _authorise_upload(
    db: DbSession,
    principal: Principal,
    *,
    now: datetime,
    folder_id: uuid.UUID | None = None,
    file_id: uuid.UUID | None = None,
) -> None:
    def check() -> None:
        if folder_id is not None:
            folders.get_folder(
                db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, now=now
            )
        if file_id is not None:
            files.get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, now=now)
        db.commit()  # release the database before a long upload; nothing here needs to stay open

    await run_in_threadpool(check)


@router.post(
    "/folders/{folder_id}/files",
    response_model=FileRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=MULTIPART_BODY,
)
async def upload_file(
    folder_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    on_conflict: OnConflictQuery = "fail",
) -> FileRead:
    """Upload a file (multipart field `file`); its type is sniffed from the bytes."""
    await _authorise_upload(db, principal, now=now, folder_id=folder_id)
    received = await receive_upload(request, services.blobs, max_bytes=services.settings.max_upload_bytes)

    def record(blob: StoredBlob) -> FileRead:
        with unit_of_work(services.write_sessions) as tx:
            file = files.add_file(
                tx,
                principal=principal,
                folder_id=folder_id,
                name=received.fields.get("name") or received.filename,
                blob=blob,
                content_type=received.content_type,
                on_conflict=on_conflict,
                now=now,
            )
            received.writer.commit()  # rows are valid: publish the bytes, then the transaction commits
            return file_read(file)

    return await run_in_threadpool(received.publish_with, record)


@router.get("/files/{file_id}", response_model=FileRead)
def get_file(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> FileRead:
    """A file's metadata and its current version."""
    return file_read(files.get_file(db, principal=principal, file_id=file_id, now=now))


@router.patch("/files/{file_id}", response_model=FileRead)
def update_file(
    file_id: uuid.UUID,
    body: FileUpdate,
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    on_conflict: OnConflictQuery = "fail",
) -> FileRead:
    """Rename and/or move a file."""
    if body.name is None and body.folder_id is None:
        raise Invalid("Give a new name, a new folder_id, or both.")
    file = files.get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, now=now)
    if body.folder_id is not None:
        file = files.move_file(
            db, principal=principal, file_id=file_id, target_id=body.folder_id, on_conflict=on_conflict, now=now
        )
    if body.name is not None:
        file = files.rename_file(db, principal=principal, file_id=file_id, name=body.name, now=now)
    return file_read(file)


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """Move a file to the trash."""
    files.delete_file(db, principal=principal, file_id=file_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/files/{file_id}/restore", response_model=FileRead)
def restore_file(
    file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now, on_conflict: OnConflictQuery = "fail"
) -> FileRead:
    """Bring a file back from the trash."""
    file = trash.restore(db, principal=principal, kind="file", item_id=file_id, on_conflict=on_conflict, now=now)
    assert isinstance(file, File)
    return file_read(file)


@router.get("/files/{file_id}/versions", response_model=list[VersionRead])
def list_versions(file_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> list[VersionRead]:
    """Every version of a file, newest first."""
    return [version_read(v) for v in files.list_versions(db, principal=principal, file_id=file_id, now=now)]


@router.post(
    "/files/{file_id}/versions",
    response_model=VersionRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=MULTIPART_BODY,
)
async def upload_version(
    file_id: uuid.UUID, request: Request, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now
) -> VersionRead:
    """Upload a new version of a file; older versions stay downloadable."""
    await _authorise_upload(db, principal, now=now, file_id=file_id)
    received = await receive_upload(request, services.blobs, max_bytes=services.settings.max_upload_bytes)

    def record(blob: StoredBlob) -> VersionRead:
        with unit_of_work(services.write_sessions) as tx:
            version = files.add_version(
                tx, principal=principal, file_id=file_id, blob=blob, content_type=received.content_type, now=now
            )
            received.writer.commit()
            return version_read(version)

    return await run_in_threadpool(received.publish_with, record)


@router.get("/orgs/{org_id}/trash", response_model=list[TrashItemRead])
def list_trash(
    org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, services: ServicesDep
) -> list[TrashItemRead]:
    """What was deleted in an organisation and can still be restored."""
    items = trash.list_trash(
        db, principal=principal, org_id=org_id, retention_days=services.settings.trash_retention_days
    )
    return [
        TrashItemRead(
            kind=i.kind, id=i.id, name=i.name, parent_id=i.parent_id, deleted_at=i.deleted_at, purge_at=i.purge_at
        )
        for i in items
    ]
