"""The trash: what was deleted and can be restored, and purging it for good after the retention."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, NotFound
from studyshelf.core.names import name_key
from studyshelf.library import access, changes
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal


@dataclass(frozen=True)
class TrashItem:
    kind: str
    id: uuid.UUID
    name: str
    org_id: uuid.UUID
    parent_id: uuid.UUID
    deleted_at: datetime
    purge_at: datetime


def list_trash(db: Session, *, principal: Principal, org_id: uuid.UUID, retention_days: int) -> list[TrashItem]:
    """What was deleted in an organisation and can still be restored, newest first."""
    require(principal, Permission.LIBRARY_READ, org_id, what="trash")
    keep = timedelta(days=retention_days)
    folders = db.scalars(select(Folder).where(Folder.org_id == org_id, Folder.deleted_at.is_not(None)))
    files = db.scalars(select(File).where(File.org_id == org_id, File.deleted_at.is_not(None)))
    items = [
        TrashItem("folder", f.id, f.name, f.org_id, f.parent_id, f.deleted_at, f.deleted_at + keep)
        for f in folders
        if f.parent_id is not None and f.deleted_at is not None
    ] + [
        TrashItem("file", f.id, f.name, f.org_id, f.folder_id, f.deleted_at, f.deleted_at + keep)
        for f in files
        if f.deleted_at is not None
    ]
    return sorted(items, key=lambda item: item.deleted_at, reverse=True)


def restore(
    db: Session, *, principal: Principal, kind: str, item_id: uuid.UUID, on_conflict: str = "fail", now: datetime
) -> Folder | File:
    """Bring an item back from the trash into its folder."""
    item: Folder | File | None = db.get(Folder, item_id) if kind == "folder" else db.get(File, item_id)
    if item is None or item.deleted_at is None:
        raise NotFound(f"No such {kind} in the trash.")
    parent_id = item.parent_id if isinstance(item, Folder) else item.folder_id
    assert parent_id is not None
    parent_path = access.folder_path(db, parent_id)
    access.authorize(
        db,
        principal=principal,
        permission=Permission.LIBRARY_WRITE,
        owner_org_id=item.org_id,
        path_ids=[f.id for f in parent_path],
        what=kind,
        now=now,
    )
    if not access.is_live(parent_path):
        raise Conflict("The folder this item was in is itself in the trash; restore that folder first.")
    item.name = changes.free_name(db, folder_id=parent_id, name=item.name, on_conflict=on_conflict, exclude=item.id)
    item.name_key = name_key(item.name)
    item.deleted_at = None
    item.updated_at = now
    db.flush()
    changes.record(db, principal, f"{kind}.restore", item, after={"name": item.name})
    return item


def purge_trash(db: Session, *, older_than: datetime) -> int:
    """Delete for good what has been in the trash since before a moment; return how many items."""
    file_ids = list(db.scalars(select(File.id).where(File.deleted_at < older_than)))
    folder_ids = list(
        db.scalars(select(Folder.id).where(Folder.deleted_at < older_than, Folder.parent_id.is_not(None)))
    )
    doomed_folders = _subtree_ids(db, folder_ids)
    doomed_files = (
        set(file_ids) | set(db.scalars(select(File.id).where(File.folder_id.in_(doomed_folders))))
        if doomed_folders
        else set(file_ids)
    )
    if doomed_files:
        db.execute(update(File).where(File.id.in_(doomed_files)).values(current_version_id=None))
        db.execute(delete(FileVersion).where(FileVersion.file_id.in_(doomed_files)))
        db.execute(delete(File).where(File.id.in_(doomed_files)))
    if doomed_folders:
        db.execute(delete(Folder).where(Folder.id.in_(doomed_folders)))
    db.flush()
    return len(file_ids) + len(folder_ids)


def _subtree_ids(db: Session, folder_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    found = set(folder_ids)
    frontier = list(folder_ids)
    while frontier:
        children = list(db.scalars(select(Folder.id).where(Folder.parent_id.in_(frontier))))
        frontier = [c for c in children if c not in found]
        found.update(frontier)
    return found
