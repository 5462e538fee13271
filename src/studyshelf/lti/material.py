"""What a partner organisation reaches in the library, for launches and the deep-linking picker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studyshelf.library.access import content_path_ids
from studyshelf.library.folders import get_root_folder
from studyshelf.library.models import File, Folder
from studyshelf.partners.grants import grants_to, org_has_access
from studyshelf.partners.models import TargetType

SEARCH_CANDIDATES = 300
SEARCH_RESULTS = 50


@dataclass(frozen=True)
class Target:
    kind: str  # "file" | "folder"
    id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def parse_target(value: str | None) -> Target | None:
    """`file:<uuid>` or `folder:<uuid>`, else None."""
    kind, _, raw = (value or "").strip().partition(":")
    if kind not in {"file", "folder"}:
        return None
    try:
        return Target(kind, uuid.UUID(raw))
    except ValueError:
        return None


def target_from_launch(custom: object, target_link_uri: object, param: str) -> Target | None:
    """The material a launch asks for: the custom parameter, else the query of the target link URI."""
    if isinstance(custom, dict):
        found = parse_target(str(custom.get(param) or ""))
        if found is not None:
            return found
    if isinstance(target_link_uri, str):
        values = parse_qs(urlsplit(target_link_uri).query).get(param)
        if values:
            return parse_target(values[0])
    return None


def reach(db: Session, *, org_id: uuid.UUID, target: Target, now: datetime) -> File | Folder | bool | None:
    """The live item if the organisation reaches it; None when it is gone; False when access ended."""
    found = content_path_ids(db, target_type=target.kind, target_id=target.id)
    if found is None:
        return None
    owner, path = found
    if not org_has_access(db, org_id=org_id, owner_org_id=owner, path_ids=path, now=now):
        return False
    return db.get(File, target.id) if target.kind == "file" else db.get(Folder, target.id)


def within(db: Session, *, kind: str, item_id: uuid.UUID, ancestor_id: uuid.UUID) -> bool:
    """Whether a live item lies at or below another (a folder target's contents)."""
    found = content_path_ids(db, target_type=kind, target_id=item_id)
    return found is not None and ancestor_id in found[1]


@dataclass(frozen=True)
class Root:
    folder_or_file: File | Folder
    kind: str
    owner_note: str


def roots(db: Session, *, org_id: uuid.UUID, now: datetime) -> list[Root]:
    """The organisation's own root folder, then what other organisations shared with it."""
    result = [Root(get_root_folder(db, org_id=org_id), "folder", "")]
    for grant in grants_to(db, grantee_org_id=org_id, now=now):
        if content_path_ids(db, target_type=grant.target_type.value, target_id=grant.target_id) is None:
            continue
        item: File | Folder | None = (
            db.get(Folder, grant.target_id) if grant.target_type is TargetType.FOLDER else db.get(File, grant.target_id)
        )
        if item is not None:
            result.append(Root(item, grant.target_type.value, "shared with you"))
    return result


def search(db: Session, *, org_id: uuid.UUID, text: str, now: datetime) -> list[tuple[str, File | Folder]]:
    """Live files and folders the organisation reaches whose name contains `text` (case-insensitive)."""
    needle = f"%{text.strip().casefold()}%"
    folders = select(Folder).where(func.lower(Folder.name).like(needle), Folder.deleted_at.is_(None))
    files = select(File).where(func.lower(File.name).like(needle), File.deleted_at.is_(None))
    candidates: list[tuple[str, File | Folder]] = [
        *(("folder", f) for f in db.scalars(folders.order_by(Folder.name).limit(SEARCH_CANDIDATES))),
        *(("file", f) for f in db.scalars(files.order_by(File.name).limit(SEARCH_CANDIDATES))),
    ]
    found: list[tuple[str, File | Folder]] = []
    for kind, item in candidates:
        if isinstance(reach(db, org_id=org_id, target=Target(kind, item.id), now=now), File | Folder):
            found.append((kind, item))
        if len(found) >= SEARCH_RESULTS:
            break
    return found
