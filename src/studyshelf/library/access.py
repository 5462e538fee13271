"""Who may see and do what in a library: the path of an item, the one policy call, and what a viewer sees.

Every library operation reaches the policy in partners/permissions.py through `authorize`; every
name or path shown outside the library (breadcrumbs, dashboards, reports) through `visible_path` or
`label_items`. A viewer is a person (judged by the policy, with their roles and tokens) or an
organisation (a report: its own content, and what live grants to it reach).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import cast

from sqlalchemy import CTE, ColumnElement, Select, Table, bindparam, literal, select
from sqlalchemy.orm import Session, aliased

import studyshelf.library.access_epoch  # noqa: F401 - registers the listeners that raise the access epoch
from studyshelf.core.errors import PermissionDenied
from studyshelf.library.models import File, Folder
from studyshelf.partners import audit
from studyshelf.partners.grants import active_grants, grants_for_principal
from studyshelf.partners.models import Grant, Organization
from studyshelf.partners.permissions import (
    ContentScope,
    Permission,
    allows,
    content_allows,
    is_active_grant,
    reaches_only_as_platform_admin,
    require_content,
)
from studyshelf.partners.principal import Principal

CHUNK = 500  # ids per IN (…) list


@dataclass(frozen=True)
class OrgViewer:
    """An organisation looking at its own figures (a report), with no person behind it."""

    org_id: uuid.UUID


Viewer = Principal | OrgViewer


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


def _ancestors_statement() -> Select[Folder]:
    start = select(Folder.id, Folder.parent_id).where(Folder.id.in_(bindparam("folder_ids", expanding=True)))
    chain = start.cte("ancestors", recursive=True)
    parent = aliased(Folder)
    # UNION, not UNION ALL: folders above many items are walked once.
    chain = chain.union(select(parent.id, parent.parent_id).where(parent.id == chain.c.parent_id))
    return select(Folder).where(Folder.id.in_(select(chain.c.id)))


# Built once: constructing a recursive CTE anew on every call cost more than running it.
_FOLDER_PATH = _folder_path_statement()
_ANCESTORS = _ancestors_statement()


def folder_chain(start_folder_id: ColumnElement[uuid.UUID]) -> CTE:
    """A recursive CTE of the folders from `start_folder_id` (a scalar subquery) up to the root: `id`, `trashed`
    (in the trash) and `depth` (0 at the start). For reads that fold an item's path into their own statement;
    the path is live when it has rows and none is trashed."""
    folders = cast(Table, Folder.__table__)
    start = select(
        folders.c.id, folders.c.parent_id, folders.c.deleted_at.is_not(None).label("trashed"), literal(0).label("depth")
    ).where(folders.c.id == start_folder_id)
    chain = start.cte("folder_chain", recursive=True)
    parent = folders.alias("parent")
    return chain.union_all(
        select(parent.c.id, parent.c.parent_id, parent.c.deleted_at.is_not(None), chain.c.depth + 1).where(
            parent.c.id == chain.c.parent_id
        )
    )


def folder_path(db: Session, folder_id: uuid.UUID) -> list[Folder]:
    """The chain of folders from the root down to this one (one recursive query)."""
    return list(db.scalars(_FOLDER_PATH, {"folder_id": folder_id}))


def is_live(path: list[Folder]) -> bool:
    """Whether a path exists and no folder on it is in the trash."""
    return bool(path) and all(folder.deleted_at is None for folder in path)


def content_path_ids(
    db: Session, *, target_type: str, target_id: uuid.UUID
) -> tuple[uuid.UUID, list[uuid.UUID]] | None:
    """The owner and the ids from the root to a live item, or None when it is gone or in the trash."""
    if target_type == "folder":
        folder = db.get(Folder, target_id)
        path = folder_path(db, target_id) if folder is not None else []
        return (folder.org_id, [f.id for f in path]) if folder is not None and is_live(path) else None
    file = db.get(File, target_id)
    if file is None or file.deleted_at is not None:
        return None
    path = folder_path(db, file.folder_id)
    return (file.org_id, [f.id for f in path] + [file.id]) if is_live(path) else None


def _audit_platform_admin_view(
    db: Session, principal: Principal, owner_org_id: uuid.UUID, what: str, item_id: uuid.UUID
) -> None:
    audit.record(
        db, principal=principal, org_id=owner_org_id, action="platform_admin.view", target_type=what, target_id=item_id
    )


def authorize(
    db: Session,
    *,
    principal: Principal,
    permission: Permission,
    owner_org_id: uuid.UUID,
    path_ids: list[uuid.UUID],
    what: str,
    now: datetime,
    placement: bool = False,
) -> None:
    """Judge an action on the item at the end of `path_ids` through the one policy.

    With `placement` (renaming, moving or deleting the item itself) the right must come from the
    folders above it, so a partner managing a shared folder cannot remove the shared folder; the
    item must still be visible through its whole path, or the answer is NotFound.
    """
    # Members of the owner need no grant lookup; everyone else is judged on the live grants along the path.
    needs_grants = not allows(principal, permission, owner_org_id)
    grants = grants_for_principal(db, principal=principal, target_ids=path_ids, now=now) if needs_grants else []
    scope = ContentScope(owner_org_id, tuple(path_ids))
    if not placement:
        require_content(principal, permission, scope, grants, now=now, what=what)
        if not grants and reaches_only_as_platform_admin(principal, owner_org_id):
            _audit_platform_admin_view(db, principal, owner_org_id, what, path_ids[-1])
        return
    require_content(principal, Permission.LIBRARY_READ, scope, grants, now=now, what=what)
    above = ContentScope(owner_org_id, tuple(path_ids[:-1]))
    if not content_allows(principal, permission, above, grants, now=now):
        raise PermissionDenied(f"You may not move, rename or delete this {what}; ask its owner.")


def _sees_whole_library(viewer: Viewer, owner_org_id: uuid.UUID) -> bool:
    if isinstance(viewer, OrgViewer):
        return viewer.org_id == owner_org_id
    return allows(viewer, Permission.LIBRARY_READ, owner_org_id)


def _grants(
    db: Session, viewer: Viewer, target_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[Grant]]:
    """The viewer's live grants on any of the targets, by target."""
    by_target: dict[uuid.UUID, list[Grant]] = defaultdict(list)
    for chunk in _chunks(set(target_ids)):
        if isinstance(viewer, OrgViewer):
            found = active_grants(db, target_ids=chunk, grantee_org_ids=[viewer.org_id], now=now)
        else:
            found = grants_for_principal(db, principal=viewer, target_ids=chunk, now=now)
        for grant in found:
            by_target[grant.target_id].append(grant)
    return by_target


def _visible_from(
    viewer: Viewer,
    owner_org_id: uuid.UUID,
    path_ids: Sequence[uuid.UUID],
    grants: Mapping[uuid.UUID, list[Grant]],
    now: datetime,
) -> int | None:
    """Where the viewer's sight of a path begins: 0 for the owner, the first granted item for a grantee, else None."""
    if _sees_whole_library(viewer, owner_org_id):
        return 0
    for index, item_id in enumerate(path_ids):
        on_item = grants.get(item_id, [])
        if isinstance(viewer, OrgViewer):
            reached = any(g.owner_org_id == owner_org_id and is_active_grant(g, now) for g in on_item)
        else:
            reached = content_allows(
                viewer, Permission.LIBRARY_READ, ContentScope(owner_org_id, (item_id,)), on_item, now=now
            )
        if reached:
            return index
    return None


def visible_path(db: Session, *, viewer: Viewer, folder: Folder, now: datetime) -> list[Folder]:
    """The breadcrumbs the viewer may see: all for the owner, from the shared folder down for a grantee."""
    path = folder_path(db, folder.id)
    grants = {} if _sees_whole_library(viewer, folder.org_id) else _grants(db, viewer, [f.id for f in path], now)
    start = _visible_from(viewer, folder.org_id, [f.id for f in path], grants, now)
    return path[len(path) - 1 if start is None else start :]


@dataclass(frozen=True)
class ItemLabel:
    """A file or folder as a viewer may name it."""

    exists: bool  # False when it was purged (or the id never named one)
    visible: bool  # the viewer owns it or a live grant reaches it; the name is withheld otherwise
    name: str
    path: tuple[str, ...]  # the visible folders above it: below the library root, or from the shared folder down
    owner: str  # the name of the organisation whose library holds it
    deleted: bool  # it, or a folder above it, is in the trash
    content_type: str | None  # a file's current version's type


_GONE = ItemLabel(exists=False, visible=False, name="", path=(), owner="", deleted=True, content_type=None)


def _chunks(values: Iterable[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _chain(folders: dict[uuid.UUID, Folder], folder_id: uuid.UUID) -> list[Folder]:
    """Folders from the root down to this one (as far as they exist)."""
    path: list[Folder] = []
    current = folders.get(folder_id)
    while current is not None:
        path.append(current)
        current = folders.get(current.parent_id) if current.parent_id else None
    return path[::-1]


def label_items(
    db: Session,
    *,
    viewer: Viewer,
    file_ids: Iterable[uuid.UUID],
    folder_ids: Iterable[uuid.UUID],
    now: datetime,
) -> tuple[dict[uuid.UUID, ItemLabel], dict[uuid.UUID, ItemLabel]]:
    """Labels of many files and folders for one viewer, in four statements per 500 ids (not one per id)."""
    wanted_files, wanted_folders = set(file_ids), set(folder_ids)
    files = {f.id: f for chunk in _chunks(wanted_files) for f in db.scalars(select(File).where(File.id.in_(chunk)))}
    seeds = wanted_folders | {f.folder_id for f in files.values()}
    folders = {f.id: f for chunk in _chunks(seeds) for f in db.scalars(_ANCESTORS, {"folder_ids": chunk})}
    items: list[File | Folder] = [*files.values(), *folders.values()]
    owner_ids = list({item.org_id for item in items})
    by_id = select(Organization.id, Organization.name).where(Organization.id.in_(owner_ids))
    owners: dict[uuid.UUID, str] = dict(db.execute(by_id).all()) if owner_ids else {}
    grants = _grants(db, viewer, [item.id for item in items if not _sees_whole_library(viewer, item.org_id)], now)

    def label(item: File | Folder) -> ItemLabel:
        chain = _chain(folders, item.folder_id if isinstance(item, File) else item.id)
        above = chain if isinstance(item, File) else chain[:-1]
        path_ids = [f.id for f in chain] + ([item.id] if isinstance(item, File) else [])
        owner = owners.get(item.org_id, "")
        deleted = item.deleted_at is not None or any(f.deleted_at is not None for f in chain)
        start = _visible_from(viewer, item.org_id, path_ids, grants, now)
        if start is None:
            return ItemLabel(True, False, "", (), owner, deleted, None)
        own = _sees_whole_library(viewer, item.org_id)
        if (
            own
            and not deleted
            and isinstance(viewer, Principal)
            and reaches_only_as_platform_admin(viewer, item.org_id)
        ):
            _audit_platform_admin_view(db, viewer, item.org_id, "file" if isinstance(item, File) else "folder", item.id)
        shown = above[1:] if own else above[start:]  # an owner's path starts below the library root
        version = item.current_version if isinstance(item, File) else None
        content_type = version.content_type if version is not None else None
        return ItemLabel(True, True, item.name, tuple(f.name for f in shown), owner, deleted, content_type)

    file_labels = {i: label(files[i]) if i in files else _GONE for i in wanted_files}
    folder_labels = {i: label(folders[i]) if i in folders else _GONE for i in wanted_folders}
    return file_labels, folder_labels
