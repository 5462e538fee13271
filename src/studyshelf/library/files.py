"""Files and their versions: loading one the principal may act on, uploading, renaming, moving, deleting."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Invalid, NotFound
from studyshelf.core.names import name_key, validate_name
from studyshelf.library import access, blobs, changes
from studyshelf.library.folders import get_folder
from studyshelf.library.models import File, FileVersion
from studyshelf.partners.permissions import Permission
from studyshelf.partners.principal import Principal
from studyshelf.storage import StoredBlob


def get_file(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    permission: Permission = Permission.LIBRARY_READ,
    placement: bool = False,
    now: datetime,
) -> File:
    """Load a live file the principal may act on; NotFound otherwise (`placement` as for folders)."""
    file = db.get(File, file_id)
    path = access.folder_path(db, file.folder_id) if file is not None else []
    if file is None or file.deleted_at is not None or not access.is_live(path):
        raise NotFound("No such file.")
    access.authorize(
        db,
        principal=principal,
        permission=permission,
        owner_org_id=file.org_id,
        path_ids=[*(f.id for f in path), file.id],
        what="file",
        placement=placement,
        now=now,
    )
    return file


def rename_file(db: Session, *, principal: Principal, file_id: uuid.UUID, name: str, now: datetime) -> File:
    file = get_file(
        db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    changes.rename(db, principal, file, name=name, now=now)
    return file


def move_file(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    target_id: uuid.UUID,
    on_conflict: str = "fail",
    now: datetime,
) -> File:
    file = get_file(
        db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    target = get_folder(db, principal=principal, folder_id=target_id, permission=Permission.LIBRARY_WRITE, now=now)
    if target.org_id != file.org_id:
        raise Invalid("Items move only within one organisation's library.")
    changes.move(db, principal, file, target_id=target.id, on_conflict=on_conflict, now=now)
    return file


def add_file(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    name: str,
    blob: StoredBlob,
    content_type: str,
    on_conflict: str = "fail",
    now: datetime,
) -> File:
    """Create a file whose first version holds an already stored blob."""
    folder = get_folder(db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, now=now)
    name = changes.free_name(db, folder_id=folder.id, name=validate_name(name), on_conflict=on_conflict)
    blobs.record_blob(db, blob=blob, now=now)
    file = File(
        org_id=folder.org_id, folder_id=folder.id, name=name, name_key=name_key(name), created_by=principal.user.id
    )
    db.add(file)
    db.flush()
    _append_version(db, file=file, blob=blob, content_type=content_type, user_id=principal.user.id)
    changes.record(db, principal, "file.upload", file, after={"name": name, "sha256": blob.sha256, "size": blob.size})
    return file


def add_version(
    db: Session, *, principal: Principal, file_id: uuid.UUID, blob: StoredBlob, content_type: str, now: datetime
) -> FileVersion:
    """Upload a new version; older versions stay as they were."""
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, now=now)
    blobs.record_blob(db, blob=blob, now=now)
    version = _append_version(db, file=file, blob=blob, content_type=content_type, user_id=principal.user.id)
    changes.record(db, principal, "file.new_version", file, after={"version": version.number, "sha256": blob.sha256})
    return version


def _append_version(db: Session, *, file: File, blob: StoredBlob, content_type: str, user_id: uuid.UUID) -> FileVersion:
    latest = db.scalar(
        select(FileVersion.number).where(FileVersion.file_id == file.id).order_by(FileVersion.number.desc()).limit(1)
    )
    version = FileVersion(
        file_id=file.id,
        number=(latest or 0) + 1,
        blob_sha256=blob.sha256,
        size=blob.size,
        content_type=content_type,
        created_by=user_id,
    )
    db.add(version)
    db.flush()
    file.current_version_id = version.id
    file.current_version = version
    file.updated_at = version.created_at
    db.flush()
    return version


def list_versions(db: Session, *, principal: Principal, file_id: uuid.UUID, now: datetime) -> list[FileVersion]:
    file = get_file(db, principal=principal, file_id=file_id, now=now)
    return list(
        db.scalars(select(FileVersion).where(FileVersion.file_id == file.id).order_by(FileVersion.number.desc()))
    )


def get_version(
    db: Session, *, principal: Principal, file_id: uuid.UUID, version_id: uuid.UUID, now: datetime
) -> tuple[File, FileVersion]:
    file = get_file(db, principal=principal, file_id=file_id, now=now)
    version = db.get(FileVersion, version_id)
    if version is None or version.file_id != file.id:
        raise NotFound("No such version.")
    return file, version


def delete_file(db: Session, *, principal: Principal, file_id: uuid.UUID, now: datetime) -> File:
    file = get_file(
        db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    file.deleted_at = now
    db.flush()
    changes.record(db, principal, "file.delete", file)
    return file
