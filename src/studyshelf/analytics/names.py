"""Names of the files, folders and organisations in usage figures, as far as the principal may see them.

Files and folders are named through the library's access model (library.access.label_items), in batches:
a few statements however many ids a page shows; organisations through the partner service; courses and
resource links by the titles LTI launches of the organisations the principal sees told (analytics.course_names).
"""

from __future__ import annotations

import uuid
from collections.abc import Container, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from studyshelf.analytics import course_names
from studyshelf.library.access import ItemLabel, label_items
from studyshelf.library.sniff import category
from studyshelf.partners import service as partners
from studyshelf.partners.principal import Principal


class Names:
    """Names for the ids in usage figures; `learn` labels many files and folders at once."""

    def __init__(self, db: Session, principal: Principal, org_id: uuid.UUID, now: datetime) -> None:
        self.db, self.principal, self.org_id, self.now = db, principal, org_id, now
        self._orgs: dict[str, str] | None = None
        self._titles: dict[str, dict[str, str | None]] = {course_names.COURSE: {}, course_names.RESOURCE_LINK: {}}
        self._files: dict[str, tuple[str, str] | None] = {}
        self._folders: dict[str, str | None] = {}

    def org(self, key: str) -> str:
        return self._org_names().get(key, "Another organisation")

    def _org_names(self) -> dict[str, str]:
        if self._orgs is None:
            orgs = partners.list_organizations(self.db, principal=self.principal)
            self._orgs = {str(o.id): o.name + (" (you)" if o.id == self.org_id else "") for o in orgs}
        return self._orgs

    def learn_titles(self, kind: str, keys: Iterable[str]) -> None:
        """Look up at once the titles of every course (or resource link) key not known yet."""
        known = self._titles[kind]
        new = {k for k in keys if k and k not in known}
        if not new:
            return
        orgs = [uuid.UUID(key) for key in self._org_names()]
        found = course_names.titles(self.db, kind=kind, keys=new, org_ids=orgs, prefer=self.org_id)
        for key in new:
            known[key] = found[key].text() if key in found else None

    def course(self, key: str) -> str | None:
        """The course's title as its LMS told it (None when no launch told it)."""
        self.learn_titles(course_names.COURSE, [key])
        return self._titles[course_names.COURSE].get(key)

    def resource_link(self, key: str) -> str | None:
        """The title of the LMS activity (resource link) that placed the material."""
        self.learn_titles(course_names.RESOURCE_LINK, [key])
        return self._titles[course_names.RESOURCE_LINK].get(key)

    def of(self, dim: str, key: str) -> str | None:
        """The name of a dimension's value where StudyShelf knows one (organisations, courses, files, folders)."""
        if not key:
            return None
        if dim in ("partner", "owner"):
            return self.org(key)
        if dim == "course":
            return self.course(key)
        if dim == "file":
            found = self.file(key)
            return found[0] if found else None
        return self.folder(key) if dim == "folder" else None

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
