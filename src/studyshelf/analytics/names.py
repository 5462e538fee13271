"""Names of the files, folders and organisations in usage figures, as far as the principal may see them.

Files and folders are named through the library's access model (library.access.label_items), in batches:
a few statements however many ids a page shows; organisations through the partner service.
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from studyshelf.library.access import ItemLabel, label_items
from studyshelf.library.sniff import category
from studyshelf.partners import service as partners
from studyshelf.partners.principal import Principal


class Names:
    """Names for the ids in usage figures; `learn` labels many files and folders at once."""

    def __init__(self, db: Session, principal: Principal, org_id: uuid.UUID, now: datetime) -> None:
        self.db, self.principal, self.org_id, self.now = db, principal, org_id, now
        self._orgs: dict[str, str] | None = None
        self._files: dict[str, tuple[str, str] | None] = {}
        self._folders: dict[str, str | None] = {}

    def org(self, key: str) -> str:
        if self._orgs is None:
            orgs = partners.list_organizations(self.db, principal=self.principal)
            self._orgs = {str(o.id): o.name + (" (you)" if o.id == self.org_id else "") for o in orgs}
        return self._orgs.get(key, "Another organisation")

    def learn(self, *, files: Iterable[str] = (), folders: Iterable[str] = ()) -> None:
        """Label at once every file and folder key not known yet; a key that names nothing visible gets None."""
        new_files, new_folders = _parse(files, known=self._files), _parse(folders, known=self._folders)
        if not new_files and not new_folders:
            return
        file_labels, folder_labels = label_items(
            self.db, viewer=self.principal, file_ids=new_files.values(), folder_ids=new_folders.values(), now=self.now
        )
        for key, file_id in new_files.items():
            found = file_labels[file_id]
            kind = category(found.content_type) if found.content_type else "other"
            self._files[key] = (found.name, kind) if _shown(found) else None
        for key, folder_id in new_folders.items():
            self._folders[key] = folder_labels[folder_id].name if _shown(folder_labels[folder_id]) else None

    def file(self, key: str) -> tuple[str, str] | None:
        """The file's name and kind (pdf, video, …)."""
        self.learn(files=[key])
        return self._files.get(key)

    def folder(self, key: str) -> str | None:
        self.learn(folders=[key])
        return self._folders.get(key)


def _parse(keys: Iterable[str], *, known: Container[str]) -> dict[str, uuid.UUID]:
    parsed = {}
    for key in keys:
        if key in known:
            continue
        try:
            parsed[key] = uuid.UUID(key)
        except ValueError:
            continue
    return parsed


def _shown(item: ItemLabel) -> bool:
    """A name is shown while the item is live and the principal may see it."""
    return item.visible and not item.deleted
