"""Folders: loading one the principal may act on, creating, renaming, moving and deleting them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, Invalid, NotFound
from studyshelf.core.names import name_key, validate_name
from studyshelf.library import access, changes
from studyshelf.library.models import Folder
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal


def get_root_folder(db: Session, *, org_id: uuid.UUID) -> Folder:
    root = db.scalar(select(Folder).where(Folder.org_id == org_id, Folder.parent_id.is_(None)))
    if root is None:
        raise NotFound("That organisation has no library.")
    return root


def get_folder(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    permission: Permission = Permission.LIBRARY_READ,
    placement: bool = False,
    now: datetime,
) -> Folder:
    """Load a live folder the principal may act on; NotFound otherwise.

    `placement` is for renaming, moving or deleting the folder itself: that needs the right on the
    folder it sits in, so a partner who manages a shared folder cannot remove the shared folder.
    """
    folder = db.get(Folder, folder_id)
    path = access.folder_path(db, folder.id) if folder is not None else []
    if folder is None or not access.is_live(path):
        raise NotFound("No such folder.")
    access.authorize(
        db,
        principal=principal,
        permission=permission,
        owner_org_id=folder.org_id,
        path_ids=[f.id for f in path],
        what="folder",
        placement=placement,
        now=now,
    )
    return folder


def create_folder(
    db: Session, *, principal: Principal, parent_id: uuid.UUID, name: str, on_conflict: str = "fail", now: datetime
) -> Folder:
    """Create a folder inside another."""
    parent = get_folder(db, principal=principal, folder_id=parent_id, permission=Permission.LIBRARY_WRITE, now=now)
    name = changes.free_name(db, folder_id=parent.id, name=validate_name(name), on_conflict=on_conflict)
    folder = Folder(
        org_id=parent.org_id, parent_id=parent.id, name=name, name_key=name_key(name), created_by=principal.user.id
    )
    db.add(folder)
    db.flush()
    changes.record(db, principal, "folder.create", folder, after={"name": name, "parent_id": parent.id})
    return folder


def search_folders_for_move(db: Session, *, principal: Principal, org_id: uuid.UUID) -> list[tuple[Folder, str]]:
    """Every live folder of an organisation the principal may write to, with its path, for a move dialog."""
    require(principal, Permission.LIBRARY_WRITE, org_id, what="folder")
    folders = list(db.scalars(select(Folder).where(Folder.org_id == org_id)))
    by_id = {f.id: f for f in folders}

    def path_of(folder: Folder) -> str | None:
        names: list[str] = []
        node: Folder | None = folder
        while node is not None:
            if node.deleted_at is not None:
                return None
            names.append(node.name)
            node = by_id.get(node.parent_id) if node.parent_id else None
        return " / ".join(reversed(names))

    result = [(f, p) for f in folders if (p := path_of(f)) is not None]
    return sorted(result, key=lambda pair: pair[1].casefold())


def rename_folder(db: Session, *, principal: Principal, folder_id: uuid.UUID, name: str, now: datetime) -> Folder:
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be renamed.")
    changes.rename(db, principal, folder, name=name, now=now)
    return folder


def move_folder(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    target_id: uuid.UUID,
    on_conflict: str = "fail",
    now: datetime,
) -> Folder:
    """Move a folder under another of the same organisation (never into its own subtree)."""
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be moved.")
    target = get_folder(db, principal=principal, folder_id=target_id, permission=Permission.LIBRARY_WRITE, now=now)
    if target.org_id != folder.org_id:
        raise Invalid("Items move only within one organisation's library.")
    if any(ancestor.id == folder.id for ancestor in access.folder_path(db, target.id)):
        raise Conflict("A folder cannot be moved into itself or one of its subfolders.")
    changes.move(db, principal, folder, target_id=target.id, on_conflict=on_conflict, now=now)
    return folder


def delete_folder(db: Session, *, principal: Principal, folder_id: uuid.UUID, now: datetime) -> Folder:
    """Move a folder (and so its subtree) to the trash."""
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True, now=now
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be deleted.")
    folder.deleted_at = now
    db.flush()
    changes.record(db, principal, "folder.delete", folder)
    return folder
