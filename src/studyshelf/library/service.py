"""Folders, files, versions and the trash (metadata only; bytes live in the blob store)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Select, String, and_, bindparam, delete, literal, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from studyshelf.core.clock import utcnow
from studyshelf.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from studyshelf.core.names import name_key, validate_name
from studyshelf.library.models import Blob, File, FileVersion, Folder
from studyshelf.partners import audit
from studyshelf.partners import service as partners
from studyshelf.partners.grants import grants_for_principal
from studyshelf.partners.models import Organization, OrgKind
from studyshelf.partners.permissions import (
    ContentScope,
    Permission,
    allows,
    content_allows,
    reaches_only_as_platform_admin,
    require,
    require_content,
)
from studyshelf.partners.principal import Principal
from studyshelf.storage import StoredBlob

ROOT_NAME = "Library"


def provision_organization(db: Session, *, name: str, slug: str, kind: OrgKind) -> Organization:
    """Create an organisation together with its root folder."""
    org = partners.create_organization(db, name=name, slug=slug, kind=kind)
    db.add(Folder(org_id=org.id, parent_id=None, name=ROOT_NAME, name_key=name_key(ROOT_NAME)))
    db.flush()
    return org


def get_root_folder(db: Session, *, org_id: uuid.UUID) -> Folder:
    root = db.scalar(select(Folder).where(Folder.org_id == org_id, Folder.parent_id.is_(None)))
    if root is None:
        raise NotFound("That organisation has no library.")
    return root


def _folder_path_statement() -> Select[tuple[Folder, int]]:
    start = select(Folder.id, Folder.parent_id, literal(0).label("depth")).where(
        Folder.id == bindparam("folder_id", type_=Folder.id.type)
    )
    chain = start.cte("chain", recursive=True)
    parent = aliased(Folder)
    chain = chain.union_all(
        select(parent.id, parent.parent_id, (chain.c.depth + 1).label("depth")).where(parent.id == chain.c.parent_id)
    )
    return select(Folder, chain.c.depth).join(chain, chain.c.id == Folder.id).order_by(chain.c.depth.desc())


# Built once: constructing the recursive CTE anew on every call cost more than running it.
_FOLDER_PATH = _folder_path_statement()


def folder_path(db: Session, folder_id: uuid.UUID) -> list[Folder]:
    """The chain of folders from the root down to this one (one recursive query)."""
    return list(db.scalars(_FOLDER_PATH, {"folder_id": folder_id}))


def _is_live(path: list[Folder]) -> bool:
    return bool(path) and all(folder.deleted_at is None for folder in path)


def _authorize(
    db: Session,
    *,
    principal: Principal,
    permission: Permission,
    owner_org_id: uuid.UUID,
    path_ids: list[uuid.UUID],
    what: str,
    placement: bool = False,
) -> None:
    """Judge an action on the item at the end of `path_ids` through the one policy.

    With `placement` (renaming, moving or deleting the item itself) the right must come from the
    folders above it, so a partner managing a shared folder cannot remove the shared folder; the
    item must still be visible through its whole path, or the answer is NotFound.
    """
    # Members of the owner need no grant lookup; everyone else is judged on the live grants along the path.
    needs_grants = not allows(principal, permission, owner_org_id)
    grants = grants_for_principal(db, principal=principal, target_ids=path_ids) if needs_grants else []
    now = utcnow()
    if not placement:
        require_content(principal, permission, ContentScope(owner_org_id, tuple(path_ids)), grants, now=now, what=what)
        if not grants and reaches_only_as_platform_admin(principal, owner_org_id):
            audit.record(
                db,
                principal=principal,
                org_id=owner_org_id,
                action="platform_admin.view",
                target_type=what,
                target_id=path_ids[-1],
            )
        return
    require_content(
        principal, Permission.LIBRARY_READ, ContentScope(owner_org_id, tuple(path_ids)), grants, now=now, what=what
    )
    above = ContentScope(owner_org_id, tuple(path_ids[:-1]))
    if not content_allows(principal, permission, above, grants, now=now):
        raise PermissionDenied(f"You may not move, rename or delete this {what}; ask its owner.")


def get_folder(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    permission: Permission = Permission.LIBRARY_READ,
    placement: bool = False,
) -> Folder:
    """Load a live folder the principal may act on; NotFound otherwise.

    `placement` is for renaming, moving or deleting the folder itself: that needs the right on the
    folder it sits in, so a partner who manages a shared folder cannot remove the shared folder.
    """
    folder = db.get(Folder, folder_id)
    path = folder_path(db, folder.id) if folder is not None else []
    if folder is None or not _is_live(path):
        raise NotFound("No such folder.")
    _authorize(
        db,
        principal=principal,
        permission=permission,
        owner_org_id=folder.org_id,
        path_ids=[f.id for f in path],
        what="folder",
        placement=placement,
    )
    return folder


def get_file(
    db: Session,
    *,
    principal: Principal,
    file_id: uuid.UUID,
    permission: Permission = Permission.LIBRARY_READ,
    placement: bool = False,
) -> File:
    """Load a live file the principal may act on; NotFound otherwise (`placement` as for folders)."""
    file = db.get(File, file_id)
    path = folder_path(db, file.folder_id) if file is not None else []
    if file is None or file.deleted_at is not None or not _is_live(path):
        raise NotFound("No such file.")
    _authorize(
        db,
        principal=principal,
        permission=permission,
        owner_org_id=file.org_id,
        path_ids=[*(f.id for f in path), file.id],
        what="file",
        placement=placement,
    )
    return file


def content_path_ids(
    db: Session, *, target_type: str, target_id: uuid.UUID
) -> tuple[uuid.UUID, list[uuid.UUID]] | None:
    """The owner and the ids from the root to a live item, or None when it is gone or in the trash."""
    if target_type == "folder":
        folder = db.get(Folder, target_id)
        path = folder_path(db, target_id) if folder is not None else []
        return (folder.org_id, [f.id for f in path]) if folder is not None and _is_live(path) else None
    file = db.get(File, target_id)
    if file is None or file.deleted_at is not None:
        return None
    path = folder_path(db, file.folder_id)
    return (file.org_id, [f.id for f in path] + [file.id]) if _is_live(path) else None


def visible_path(db: Session, *, principal: Principal, folder: Folder) -> list[Folder]:
    """The breadcrumbs the principal may see: all for the owner, from the shared folder down for a grantee."""
    path = folder_path(db, folder.id)
    if allows(principal, Permission.LIBRARY_READ, folder.org_id):
        return path
    granted = {g.target_id for g in grants_for_principal(db, principal=principal, target_ids=[f.id for f in path])}
    start = next((i for i, f in enumerate(path) if f.id in granted), len(path) - 1)
    return path[start:]


def _audit(
    db: Session,
    principal: Principal,
    action: str,
    item: Folder | File,
    *,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
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


def _free_name(
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


def create_folder(
    db: Session, *, principal: Principal, parent_id: uuid.UUID, name: str, on_conflict: str = "fail"
) -> Folder:
    """Create a folder inside another."""
    parent = get_folder(db, principal=principal, folder_id=parent_id, permission=Permission.LIBRARY_WRITE)
    name = _free_name(db, folder_id=parent.id, name=validate_name(name), on_conflict=on_conflict)
    folder = Folder(
        org_id=parent.org_id, parent_id=parent.id, name=name, name_key=name_key(name), created_by=principal.user.id
    )
    db.add(folder)
    db.flush()
    _audit(db, principal, "folder.create", folder, after={"name": name, "parent_id": parent.id})
    return folder


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
) -> tuple[list[Entry], Cursor | None]:
    """List a folder's live children, folders first, with keyset pagination; return the next cursor."""
    folder = get_folder(db, principal=principal, folder_id=folder_id)
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


def rename_folder(db: Session, *, principal: Principal, folder_id: uuid.UUID, name: str) -> Folder:
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be renamed.")
    before = folder.name
    folder.name = _free_name(
        db, folder_id=folder.parent_id, name=validate_name(name), on_conflict="fail", exclude=folder.id
    )
    folder.name_key = name_key(folder.name)
    folder.updated_at = utcnow()
    db.flush()
    _audit(db, principal, "folder.rename", folder, before={"name": before}, after={"name": folder.name})
    return folder


def move_folder(
    db: Session, *, principal: Principal, folder_id: uuid.UUID, target_id: uuid.UUID, on_conflict: str = "fail"
) -> Folder:
    """Move a folder under another of the same organisation (never into its own subtree)."""
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be moved.")
    target = get_folder(db, principal=principal, folder_id=target_id, permission=Permission.LIBRARY_WRITE)
    if target.org_id != folder.org_id:
        raise Invalid("Items move only within one organisation's library.")
    if any(ancestor.id == folder.id for ancestor in folder_path(db, target.id)):
        raise Conflict("A folder cannot be moved into itself or one of its subfolders.")
    if target.id != folder.parent_id:
        before = {"parent_id": folder.parent_id, "name": folder.name}
        folder.name = _free_name(db, folder_id=target.id, name=folder.name, on_conflict=on_conflict, exclude=folder.id)
        folder.name_key = name_key(folder.name)
        folder.parent_id = target.id
        folder.updated_at = utcnow()
        db.flush()
        _audit(db, principal, "folder.move", folder, before=before, after={"parent_id": target.id, "name": folder.name})
    return folder


def rename_file(db: Session, *, principal: Principal, file_id: uuid.UUID, name: str) -> File:
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True)
    before = file.name
    file.name = _free_name(db, folder_id=file.folder_id, name=validate_name(name), on_conflict="fail", exclude=file.id)
    file.name_key = name_key(file.name)
    file.updated_at = utcnow()
    db.flush()
    _audit(db, principal, "file.rename", file, before={"name": before}, after={"name": file.name})
    return file


def move_file(
    db: Session, *, principal: Principal, file_id: uuid.UUID, target_id: uuid.UUID, on_conflict: str = "fail"
) -> File:
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True)
    target = get_folder(db, principal=principal, folder_id=target_id, permission=Permission.LIBRARY_WRITE)
    if target.org_id != file.org_id:
        raise Invalid("Items move only within one organisation's library.")
    if target.id != file.folder_id:
        before = {"folder_id": file.folder_id, "name": file.name}
        file.name = _free_name(db, folder_id=target.id, name=file.name, on_conflict=on_conflict, exclude=file.id)
        file.name_key = name_key(file.name)
        file.folder_id = target.id
        file.updated_at = utcnow()
        db.flush()
        _audit(db, principal, "file.move", file, before=before, after={"folder_id": target.id, "name": file.name})
    return file


def record_blob(db: Session, *, blob: StoredBlob) -> None:
    """Register a stored blob once, even when two uploads of the same bytes race."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(Blob).values(sha256=blob.sha256, size=blob.size, created_at=utcnow()).on_conflict_do_nothing())


def add_file(
    db: Session,
    *,
    principal: Principal,
    folder_id: uuid.UUID,
    name: str,
    blob: StoredBlob,
    content_type: str,
    on_conflict: str = "fail",
) -> File:
    """Create a file whose first version holds an already stored blob."""
    folder = get_folder(db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE)
    name = _free_name(db, folder_id=folder.id, name=validate_name(name), on_conflict=on_conflict)
    record_blob(db, blob=blob)
    file = File(
        org_id=folder.org_id, folder_id=folder.id, name=name, name_key=name_key(name), created_by=principal.user.id
    )
    db.add(file)
    db.flush()
    _append_version(db, file=file, blob=blob, content_type=content_type, user_id=principal.user.id)
    _audit(db, principal, "file.upload", file, after={"name": name, "sha256": blob.sha256, "size": blob.size})
    return file


def add_version(
    db: Session, *, principal: Principal, file_id: uuid.UUID, blob: StoredBlob, content_type: str
) -> FileVersion:
    """Upload a new version; older versions stay as they were."""
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE)
    record_blob(db, blob=blob)
    version = _append_version(db, file=file, blob=blob, content_type=content_type, user_id=principal.user.id)
    _audit(db, principal, "file.new_version", file, after={"version": version.number, "sha256": blob.sha256})
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


def list_versions(db: Session, *, principal: Principal, file_id: uuid.UUID) -> list[FileVersion]:
    file = get_file(db, principal=principal, file_id=file_id)
    return list(
        db.scalars(select(FileVersion).where(FileVersion.file_id == file.id).order_by(FileVersion.number.desc()))
    )


def get_version(
    db: Session, *, principal: Principal, file_id: uuid.UUID, version_id: uuid.UUID
) -> tuple[File, FileVersion]:
    file = get_file(db, principal=principal, file_id=file_id)
    version = db.get(FileVersion, version_id)
    if version is None or version.file_id != file.id:
        raise NotFound("No such version.")
    return file, version


def delete_folder(db: Session, *, principal: Principal, folder_id: uuid.UUID) -> Folder:
    """Move a folder (and so its subtree) to the trash."""
    folder = get_folder(
        db, principal=principal, folder_id=folder_id, permission=Permission.LIBRARY_WRITE, placement=True
    )
    if folder.parent_id is None:
        raise Invalid("The root folder cannot be deleted.")
    folder.deleted_at = utcnow()
    db.flush()
    _audit(db, principal, "folder.delete", folder)
    return folder


def delete_file(db: Session, *, principal: Principal, file_id: uuid.UUID) -> File:
    file = get_file(db, principal=principal, file_id=file_id, permission=Permission.LIBRARY_WRITE, placement=True)
    file.deleted_at = utcnow()
    db.flush()
    _audit(db, principal, "file.delete", file)
    return file


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
    db: Session, *, principal: Principal, kind: str, item_id: uuid.UUID, on_conflict: str = "fail"
) -> Folder | File:
    """Bring an item back from the trash into its folder."""
    item: Folder | File | None = db.get(Folder, item_id) if kind == "folder" else db.get(File, item_id)
    if item is None or item.deleted_at is None:
        raise NotFound(f"No such {kind} in the trash.")
    parent_id = item.parent_id if isinstance(item, Folder) else item.folder_id
    assert parent_id is not None
    parent_path = folder_path(db, parent_id)
    _authorize(
        db,
        principal=principal,
        permission=Permission.LIBRARY_WRITE,
        owner_org_id=item.org_id,
        path_ids=[f.id for f in parent_path],
        what=kind,
    )
    if not _is_live(parent_path):
        raise Conflict("The folder this item was in is itself in the trash; restore that folder first.")
    item.name = _free_name(db, folder_id=parent_id, name=item.name, on_conflict=on_conflict, exclude=item.id)
    item.name_key = name_key(item.name)
    item.deleted_at = None
    item.updated_at = utcnow()
    db.flush()
    _audit(db, principal, f"{kind}.restore", item, after={"name": item.name})
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


def unreferenced_blobs(db: Session) -> list[str]:
    """Blobs no version points at any more (safe to delete from the store)."""
    used = select(FileVersion.blob_sha256)
    return list(db.scalars(select(Blob.sha256).where(Blob.sha256.not_in(used))))


def forget_blobs(db: Session, *, digests: list[str]) -> None:
    if digests:
        db.execute(delete(Blob).where(Blob.sha256.in_(digests)))
        db.flush()


def known_blob(db: Session, sha256: str) -> bool:
    return db.get(Blob, sha256) is not None
