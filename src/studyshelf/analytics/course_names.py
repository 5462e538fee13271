"""Titles of courses and resource links, learned from LTI launches, for the figures that count them by id.

An event's `course` is the LTI context id and its `resource_link` the resource link id, as the platform sent
them: stable, but meaningless to a person. Each launch tells their titles (context title and label, resource
link title), which are kept here per partner organisation and kept current by later launches. Learners stay
pseudonymous: no claim about the user is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.analytics.models import CourseName
from studyshelf.core.db import affected_rows

COURSE: Final = "course"
RESOURCE_LINK: Final = "resource_link"
KEY_LENGTH: Final = 255  # events keep the first 255 characters of the ids (analytics/enrich.py)
_BATCH: Final = 500  # keys per IN (…): well below SQLite's bound-parameter limit


@dataclass(frozen=True)
class Titled:
    title: str
    label: str
    platform: str

    def text(self) -> str:
        """ "Biology 101 (BIO101) · Moodle of Example University"; the label or the platform alone when untitled."""
        name = self.title or self.label
        if self.label and self.title and self.label != self.title:
            name = f"{self.title} ({self.label})"
        return " · ".join(part for part in (name, self.platform) if part)


def learn(
    db: Session,
    *,
    org_id: uuid.UUID,
    course: str,
    course_title: str,
    course_label: str,
    resource_link: str,
    link_title: str,
    platform: str,
    now: datetime,
) -> None:
    """Keep the titles a launch told (one upsert per id; an empty title does not erase a known one)."""
    rows = [
        (COURSE, course, course_title, course_label),
        (RESOURCE_LINK, resource_link, link_title, ""),
    ]
    upsert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    for kind, key, title, label in rows:
        if not key or not (title or label):
            continue
        values = {
            "org_id": org_id,
            "kind": kind,
            "key": key[:KEY_LENGTH],
            "title": title[:300],
            "label": label[:100],
            "platform": platform[:200],
            "learned_at": now,
        }
        statement = upsert(CourseName).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["org_id", "kind", "key"],
            set_={name: statement.excluded[name] for name in ("title", "label", "platform", "learned_at")},
        )
        db.execute(statement)


def titles(
    db: Session, *, kind: str, keys: Iterable[str], org_ids: Collection[uuid.UUID], prefer: uuid.UUID | None = None
) -> dict[str, Titled]:
    """The titles of the keys that organisations in `org_ids` learned (`prefer`'s own first, when two did)."""
    wanted = sorted({k for k in keys if k})
    found: dict[str, Titled] = {}
    if not wanted or not org_ids:
        return found
    for at in range(0, len(wanted), _BATCH):
        rows = db.execute(
            select(CourseName.key, CourseName.org_id, CourseName.title, CourseName.label, CourseName.platform).where(
                CourseName.kind == kind,
                CourseName.key.in_(wanted[at : at + _BATCH]),
                CourseName.org_id.in_(list(org_ids)),
            )
        )
        for key, org_id, title, label, platform in rows:
            if key not in found or org_id == prefer:
                found[key] = Titled(title, label, platform)
    return found


def forget(db: Session, *, org_id: uuid.UUID) -> int:
    """Drop every title an organisation's launches taught (part of erasing its analytics data)."""
    return affected_rows(db.execute(delete(CourseName).where(CourseName.org_id == org_id)))
