"""Names and folder paths for the files and folders of a report, as the organisation may see them.

An organisation's report counts its own content and content shared with it. Its own items show their
path from the library root; a shared item shows its path from the shared folder down (the owner's
folders above it are not the grantee's to see, as in the library's breadcrumbs), and only while a live
grant still reaches it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.library.models import File, Folder
from studyshelf.partners.grants import active_grants
from studyshelf.partners.models import Organization

CHUNK = 500  # ids per IN (…) list
SEPARATOR = " / "


@dataclass(frozen=True)
class Label:
    name: str
    path: str
    owner: str
    deleted: bool


def _chunks(values: Iterable[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _ids(keys: Iterable[str]) -> dict[str, uuid.UUID]:
    parsed = {}
    for key in keys:
        try:
            parsed[key] = uuid.UUID(key)
        except ValueError:
            continue
    return parsed


class _Library:
    """The rows a report needs, loaded in a few IN queries: items, every folder above them, their owners."""

    def __init__(self, db: Session, *, file_ids: Iterable[uuid.UUID], folder_ids: Iterable[uuid.UUID]) -> None:
        self.files: dict[uuid.UUID, File] = {}
        for chunk in _chunks(set(file_ids)):
            self.files.update((f.id, f) for f in db.scalars(select(File).where(File.id.in_(chunk))))
        self.folders: dict[uuid.UUID, Folder] = {}
        wanted = set(folder_ids) | {f.folder_id for f in self.files.values()}
        while wanted:  # one round per level of depth
            for chunk in _chunks(wanted):
                self.folders.update((f.id, f) for f in db.scalars(select(Folder).where(Folder.id.in_(chunk))))
            wanted = {f.parent_id for f in self.folders.values() if f.parent_id and f.parent_id not in self.folders}
        org_ids = {f.org_id for f in self.files.values()} | {f.org_id for f in self.folders.values()}
        self.owners = {o.id: o.name for o in db.scalars(select(Organization).where(Organization.id.in_(list(org_ids))))}

    def chain(self, folder_id: uuid.UUID) -> list[Folder]:
        """Folders from the root down to this one (as far as they exist)."""
        path: list[Folder] = []
        current = self.folders.get(folder_id)
        while current is not None:
            path.append(current)
            current = self.folders.get(current.parent_id) if current.parent_id else None
        return path[::-1]


def _granted_ids(db: Session, library: _Library, *, org_id: uuid.UUID) -> set[uuid.UUID]:
    """Ids on the paths of other organisations' items that carry a live grant to this organisation."""
    foreign = {f.id for f in library.files.values() if f.org_id != org_id}
    foreign |= {f.id for f in library.folders.values() if f.org_id != org_id}
    return {
        g.target_id for chunk in _chunks(foreign) for g in active_grants(db, target_ids=chunk, grantee_org_ids=[org_id])
    }


def _visible(chain_ids: list[uuid.UUID], granted: set[uuid.UUID]) -> int | None:
    """Where a grantee's view of a path starts, or None when no live grant reaches its end."""
    return next((i for i, item in enumerate(chain_ids) if item in granted), None)


def _path(folders: list[Folder], *, own: bool) -> str:
    shown = folders[1:] if own else folders  # an own path starts below the library root
    return SEPARATOR.join(f.name for f in shown)


def label_items(
    db: Session, *, org_id: uuid.UUID, file_keys: Iterable[str], folder_keys: Iterable[str]
) -> tuple[dict[str, Label], dict[str, Label]]:
    """Labels of the report's file and folder keys (ids as strings), for the organisation whose report it is."""
    files, folders = _ids(file_keys), _ids(folder_keys)
    library = _Library(db, file_ids=files.values(), folder_ids=folders.values())
    granted = _granted_ids(db, library, org_id=org_id)

    def label(chain: list[Folder], item: File | Folder, *, kind: str) -> Label:
        owner = library.owners.get(item.org_id, "")
        deleted = item.deleted_at is not None or any(f.deleted_at is not None for f in chain)
        above = chain[:-1] if isinstance(item, Folder) else chain
        if item.org_id == org_id:
            return Label(item.name, _path(above, own=True), owner, deleted)
        start = _visible([f.id for f in chain] + ([item.id] if isinstance(item, File) else []), granted)
        if start is None:
            return Label(f"({kind} no longer shared with you)", "", owner, deleted)
        return Label(item.name, _path(above[start:], own=False), owner, deleted)

    file_labels = {}
    for key, file_id in files.items():
        file = library.files.get(file_id)
        file_labels[key] = (
            label(library.chain(file.folder_id), file, kind="file") if file else Label("(deleted file)", "", "", True)
        )
    folder_labels = {}
    for key, folder_id in folders.items():
        folder = library.folders.get(folder_id)
        folder_labels[key] = (
            label(library.chain(folder.id), folder, kind="folder")
            if folder
            else Label("(deleted folder)", "", "", True)
        )
    return file_labels, folder_labels
