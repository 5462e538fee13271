"""Names and folder paths for the files and folders of a report, as the organisation may see them.

An organisation's report counts its own content and content shared with it. The library's access
model decides what it may see (library.access.label_items): its own items show their path from the
library root, a shared item its path from the shared folder down, and only while a live grant still
reaches it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from studyshelf.library import access

SEPARATOR = " / "


@dataclass(frozen=True)
class Label:
    name: str
    path: str
    owner: str
    deleted: bool


def _ids(keys: Iterable[str]) -> dict[str, uuid.UUID]:
    parsed = {}
    for key in keys:
        try:
            parsed[key] = uuid.UUID(key)
        except ValueError:
            continue
    return parsed


def _label(item: access.ItemLabel, *, kind: str) -> Label:
    if not item.exists:
        return Label(f"(deleted {kind})", "", "", True)
    if not item.visible:
        return Label(f"({kind} no longer shared with you)", "", item.owner, item.deleted)
    return Label(item.name, SEPARATOR.join(item.path), item.owner, item.deleted)


def label_items(
    db: Session, *, org_id: uuid.UUID, file_keys: Iterable[str], folder_keys: Iterable[str], now: datetime
) -> tuple[dict[str, Label], dict[str, Label]]:
    """Labels of the report's file and folder keys (ids as strings), for the organisation whose report it is."""
    files, folders = _ids(file_keys), _ids(folder_keys)
    file_items, folder_items = access.label_items(
        db, viewer=access.OrgViewer(org_id), file_ids=files.values(), folder_ids=folders.values(), now=now
    )
    return (
        {key: _label(file_items[file_id], kind="file") for key, file_id in files.items()},
        {key: _label(folder_items[folder_id], kind="folder") for key, folder_id in folders.items()},
    )
