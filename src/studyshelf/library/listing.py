"""A folder's listing: its live children, folders first, sorted and paged by keyset."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, String, and_, literal, or_, select, union_all
from sqlalchemy.orm import Session

from studyshelf.core.errors import Invalid
from studyshelf.library.folders import get_folder
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.partners.principal import Principal


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing."""

    kind: str  # "folder" | "file"
    id: uuid.UUID
    name: str
    size: int | None
    content_type: str | None
    updated_at: datetime


SORT_KEYS = ("name", "size", "updated_at")

# Which files have a thumbnail is known above the library (media processing); it registers how to find out, so a
# listing draws a thumbnail only where one exists instead of asking for missing ones.
ThumbnailFinder = Callable[[Session, Sequence[uuid.UUID]], set[uuid.UUID]]
_thumbnail_finders: list[ThumbnailFinder] = []


def register_thumbnail_finder(finder: ThumbnailFinder) -> None:
    if finder not in _thumbnail_finders:
        _thumbnail_finders.append(finder)


def thumbnailed(db: Session, entries: Sequence[Entry]) -> set[uuid.UUID]:
    """The ids of the listed files whose current version has a thumbnail."""
    file_ids = [entry.id for entry in entries if entry.kind == "file"]
    found: set[uuid.UUID] = set()
    for finder in _thumbnail_finders if file_ids else ():
        found |= finder(db, file_ids)
    return found


Cursor = tuple[int, str | int, str]


def list_children(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    sort: str = "name",
    descending: bool = False,
    after: Cursor | None = None,
    limit: int = 50,
    now: datetime,
) -> tuple[list[Entry], Cursor | None]:
    """List a folder's live children, folders first, with keyset pagination; return the next cursor."""
    folder = get_folder(db, principal=principal, folder_id=folder_id, now=now)
    return children_of(db, folder=folder, sort=sort, descending=descending, after=after, limit=limit)


def children_of(
    db: Session,
    *,
    folder: Folder,
    sort: str = "name",
    descending: bool = False,
    after: Cursor | None = None,
    limit: int = 50,
) -> tuple[list[Entry], Cursor | None]:
    """The listing itself, for a folder the caller has already authorised (a member, or a live share link)."""
    if sort not in SORT_KEYS:
        raise Invalid(f"sort must be one of {', '.join(SORT_KEYS)}.")
    folders = select(
        literal(0).label("kind"),
        Folder.id.label("id"),
        Folder.name,
        Folder.name_key,
        literal(0, BigInteger).label("size"),
        literal(None, String).label("content_type"),
        Folder.updated_at,
    ).where(Folder.parent_id == folder.id, Folder.deleted_at.is_(None))
    files = (
        select(
            literal(1).label("kind"),
            File.id.label("id"),
            File.name,
            File.name_key,
            FileVersion.size,
            FileVersion.content_type,
            File.updated_at,
        )
        .join(FileVersion, FileVersion.id == File.current_version_id)
        .where(File.folder_id == folder.id, File.deleted_at.is_(None))
    )
    rows = union_all(folders, files).subquery()
    key = {"name": rows.c.name_key, "size": rows.c.size, "updated_at": rows.c.updated_at}[sort]
    query = select(rows).order_by(rows.c.kind, key.desc() if descending else key, rows.c.id).limit(limit + 1)
    if after is not None:
        kind_value, raw_key, id_value = after
        key_value: object = datetime.fromisoformat(str(raw_key)) if sort == "updated_at" else raw_key
        key_beyond = key < key_value if descending else key > key_value
        query = query.where(
            or_(
                rows.c.kind > kind_value,
                and_(rows.c.kind == kind_value, key_beyond),
                and_(rows.c.kind == kind_value, key == key_value, rows.c.id > uuid.UUID(id_value)),
            )
        )
    result = db.execute(query).all()
    entries = [
        Entry(
            kind="folder" if r.kind == 0 else "file",
            id=r.id,
            name=r.name,
            size=r.size if r.kind == 1 else None,
            content_type=r.content_type,
            updated_at=r.updated_at,
        )
        for r in result[:limit]
    ]
    if len(result) <= limit:
        return entries, None
    last = result[limit - 1]
    last_key = {"name": last.name_key, "size": last.size, "updated_at": last.updated_at.isoformat()}[sort]
    return entries, (last.kind, last_key, str(last.id))
