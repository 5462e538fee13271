"""Names of the places content was opened from: share links by their label, LMS courses by their title.

Analytics sits beside delivery and LTI in the layers, so it cannot import their models; it reads the two
columns it needs of their tables here, read-only, for the organisation's own links and launches.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Final

from sqlalchemy import String, Uuid, column, or_, select, table
from sqlalchemy.orm import Session

_LINKS: Final = table(
    "links",
    column("id", String),
    column("label", String),
    column("org_id", Uuid),
    column("owner_org_id", Uuid),
)
_LAUNCHES: Final = table(
    "lti_launches",
    column("org_id", Uuid),
    column("context_id", String),
    column("context_title", String),
    column("at"),
)
_CHUNK: Final = 500


def placement_names(
    db: Session, *, org_id: uuid.UUID, link_ids: Collection[str], courses: Collection[str]
) -> dict[str, str]:
    """Labels of the organisation's links (made by it or on its content) and titles of its LMS courses, by id;
    ids it has no name for are left out (the page shows them shortened)."""
    names: dict[str, str] = {}
    wanted_links = sorted(set(link_ids))
    for start in range(0, len(wanted_links), _CHUNK):
        chunk = wanted_links[start : start + _CHUNK]
        rows = db.execute(
            select(_LINKS.c.id, _LINKS.c.label).where(
                _LINKS.c.id.in_(chunk), or_(_LINKS.c.org_id == org_id, _LINKS.c.owner_org_id == org_id)
            )
        )
        names |= {f"link:{link}": label for link, label in rows if label}
    wanted_courses = sorted(set(courses))
    for start in range(0, len(wanted_courses), _CHUNK):
        chunk = wanted_courses[start : start + _CHUNK]
        rows = db.execute(
            select(_LAUNCHES.c.context_id, _LAUNCHES.c.context_title)
            .where(_LAUNCHES.c.context_id.in_(chunk), _LAUNCHES.c.org_id == org_id, _LAUNCHES.c.context_title != "")
            .order_by(_LAUNCHES.c.at)  # the newest title a course had wins
        )
        names |= {f"course:{course}": title for course, title in rows}
    return names
