"""What every change to a folder or file shares: a free name in the folder it goes to, and its audit entry."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict
from studyshelf.core.names import name_key, validate_name
from studyshelf.library.models import File, Folder
from studyshelf.partners import audit
from studyshelf.partners.principal import Principal


def record(
    db: Session,
    principal: Principal,
    action: str,
    item: Folder | File,
    *,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    """Write the audit entry of a change to a folder or file."""
    kind = "folder" if isinstance(item, Folder) else "file"
    audit.record(
        db,
        principal=principal,
        org_id=item.org_id,
        action=action,
        target_type=kind,
        target_id=item.id,
        target_label=item.name,
        before=before,
        after=after,
    )


def _name_taken(db: Session, *, folder_id: uuid.UUID, key: str, exclude: uuid.UUID | None = None) -> bool:
    folder_hit = select(Folder.id).where(
        Folder.parent_id == folder_id, Folder.name_key == key, Folder.deleted_at.is_(None), Folder.id != exclude
    )
    file_hit = select(File.id).where(
        File.folder_id == folder_id, File.name_key == key, File.deleted_at.is_(None), File.id != exclude
    )
    return db.scalar(select(union_all(folder_hit, file_hit).subquery().c.id).limit(1)) is not None


def free_name(
    db: Session, *, folder_id: uuid.UUID, name: str, on_conflict: str, exclude: uuid.UUID | None = None
) -> str:
    """Return the name to use, or raise Conflict when it is taken and renaming was not asked for."""
    if not _name_taken(db, folder_id=folder_id, key=name_key(name), exclude=exclude):
        return name
    if on_conflict != "rename":
        raise Conflict(f"An item named {name!r} exists in this folder already.", name=name)
    stem, dot, extension = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    for n in range(2, 10_000):
        candidate = validate_name(f"{stem} ({n}){dot}{extension}")
        if not _name_taken(db, folder_id=folder_id, key=name_key(candidate), exclude=exclude):
            return candidate
    raise Conflict("Could not find a free name.")


def _parent_field(item: Folder | File) -> str:
    return "parent_id" if isinstance(item, Folder) else "folder_id"


def _place(
    db: Session, item: Folder | File, *, folder_id: uuid.UUID, name: str, on_conflict: str, now: datetime
) -> None:
    item.name = free_name(db, folder_id=folder_id, name=name, on_conflict=on_conflict, exclude=item.id)
    item.name_key = name_key(item.name)
    setattr(item, _parent_field(item), folder_id)
    item.updated_at = now
    db.flush()


def rename(db: Session, principal: Principal, item: Folder | File, *, name: str, now: datetime) -> None:
    """Give an item a new name in its folder (Conflict when taken), audited."""
    kind = "folder" if isinstance(item, Folder) else "file"
    before = item.name
    folder_id = getattr(item, _parent_field(item))
    _place(db, item, folder_id=folder_id, name=validate_name(name), on_conflict="fail", now=now)
    record(db, principal, f"{kind}.rename", item, before={"name": before}, after={"name": item.name})


def move(
    db: Session, principal: Principal, item: Folder | File, *, target_id: uuid.UUID, on_conflict: str, now: datetime
) -> None:
    """Put an item into another folder under a free name, audited; nothing happens when it is there already."""
    field = _parent_field(item)
    if getattr(item, field) == target_id:
        return
    kind = "folder" if isinstance(item, Folder) else "file"
    before = {field: getattr(item, field), "name": item.name}
    _place(db, item, folder_id=target_id, name=item.name, on_conflict=on_conflict, now=now)
    record(db, principal, f"{kind}.move", item, before=before, after={field: target_id, "name": item.name})
