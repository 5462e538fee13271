"""Admission: whether one visit to a share link may see the material (a read; the viewer counts and records)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, select, true
from sqlalchemy.orm import Session

from studyshelf.core.errors import NotFound
from studyshelf.core.geo import GeoLookup
from studyshelf.delivery import links, radar
from studyshelf.delivery.content import ContentFacts, outputs_of
from studyshelf.delivery.embed import embed_refusal, is_link_previewer
from studyshelf.delivery.models import Link, LinkMode
from studyshelf.library.access import content_path_ids, folder_chain
from studyshelf.library.access_epoch import EpochCache
from studyshelf.library.captions import CAPTIONED_KINDS, tracks_of
from studyshelf.library.models import File, FileVersion
from studyshelf.library.sniff import category
from studyshelf.media.models import MediaJob
from studyshelf.partners.grants import org_access_until, org_has_access


def link_state(db: Session, link: Link, now: datetime) -> str | None:
    """Why a link cannot be used now, or None: revoked, suspended, expired, deleted, grant-revoked."""
    return _state_and_path(db, link, now)[0]


def _state_and_path(db: Session, link: Link, now: datetime) -> tuple[str | None, list[uuid.UUID]]:
    """The link's state, and the ids from the root to its target while it can be used."""
    status = links.link_status(link, now)
    if status != "active":
        return status, []
    found = content_path_ids(db, target_type=link.target_type, target_id=link.target_id)
    if found is None:
        return "deleted", []
    if not org_has_access(db, org_id=link.org_id, owner_org_id=link.owner_org_id, path_ids=found[1], now=now):
        return "grant-revoked", []
    return None, found[1]


_LINKS = cast(Table, Link.__table__)
_FILES = cast(Table, File.__table__)
_VERSIONS = cast(Table, FileVersion.__table__)
_JOBS = cast(Table, MediaJob.__table__)


def _visit_statement() -> Select[Any]:
    """A visit's link with its file, that file's current version (with its processed outputs' generation) and
    its folders up to the root, in one Core statement (no ORM loading): the class rush's hot read. One row per
    folder, root first (one row with no folder when the link names a folder, or a file that is gone)."""
    link_id = bindparam("link_id", type_=_LINKS.c.id.type)
    start = (
        select(_FILES.c.folder_id)
        .join(_LINKS, and_(_LINKS.c.target_type == "file", _LINKS.c.target_id == _FILES.c.id))
        .where(_LINKS.c.id == link_id)
        .scalar_subquery()
    )
    chain = folder_chain(start)
    return (
        select(
            *_LINKS.c,
            _FILES.c.org_id.label("file_org_id"),
            _FILES.c.name.label("file_name"),
            _FILES.c.deleted_at.is_not(None).label("file_trashed"),
            _VERSIONS.c.id.label("version_id"),
            _VERSIONS.c.content_type.label("version_content_type"),
            _VERSIONS.c.size.label("version_size"),
            _VERSIONS.c.blob_sha256.label("version_sha256"),
            _VERSIONS.c.created_at.label("version_created_at"),
            _JOBS.c.generation.label("media_generation"),
            _JOBS.c.renditions.label("media_renditions"),
            chain.c.id.label("path_folder_id"),
            chain.c.trashed.label("path_trashed"),
        )
        .select_from(
            _LINKS.outerjoin(_FILES, and_(_LINKS.c.target_type == "file", _FILES.c.id == _LINKS.c.target_id))
            .outerjoin(_VERSIONS, _VERSIONS.c.id == _FILES.c.current_version_id)
            .outerjoin(_JOBS, _JOBS.c.version_id == _VERSIONS.c.id)
            .outerjoin(chain, true())
        )
        .where(_LINKS.c.id == link_id)
        .order_by(chain.c.depth.desc())
    )


_VISIT = _visit_statement()  # built once: building the recursive CTE cost more than running it


@dataclass(frozen=True)
class VisitRead:
    """What one statement tells about a visited link: the link (detached), and for a file link its rows."""

    link: Link
    rows: Sequence[Any]  # a file link's rows (file, version, one folder each); empty for a folder link


def read_visit(db: Session, link_id: str) -> VisitRead | None:
    """The link and, for a file link, its file, current version and folders (one statement); None for no link."""
    rows = db.connection().execute(_VISIT, {"link_id": link_id}).all()
    if not rows:
        return None
    values = rows[0]._mapping
    link = Link(**{column.key: values[column.key] for column in _LINKS.c})
    return VisitRead(link, rows if link.target_type == "file" else ())


PLAYED_FROM_OUTPUTS = frozenset({"video", "audio", "image"})


@dataclass(frozen=True)
class FileState:
    """A file link's state (None: usable), the ids from the root to the file, its page facts when it can be
    shown, and when its organisation's access ends by time (None: not by time)."""

    state: str | None
    path: list[uuid.UUID]
    content: ContentFacts | None = None
    access_until: datetime | None = None


def _file_state(db: Session, read: VisitRead, now: datetime) -> FileState:
    """`_state_and_path` for a file link from its read, with the file's page facts when it can be shown."""
    link, rows = read.link, read.rows
    status = links.link_status(link, now)
    if status != "active":
        return FileState(status, [])
    row = rows[0]
    live = row.file_org_id is not None and not row.file_trashed and row.path_folder_id is not None
    if not live or any(r.path_trashed for r in rows):
        return FileState("deleted", [])
    folders = [r.path_folder_id for r in rows]
    path = [*folders, link.target_id]
    until = org_access_until(db, org_id=link.org_id, owner_org_id=link.owner_org_id, path_ids=path, now=now)
    if until is False:
        return FileState("grant-revoked", [])
    if row.version_id is None:
        return FileState(None, path, access_until=until)  # no content yet: the page says so
    content = ContentFacts(
        file_id=str(link.target_id),
        version_id=str(row.version_id),
        owner_org_id=str(row.file_org_id),
        folder_path=tuple(str(folder) for folder in folders),
        content_type=row.version_content_type,
        filename=row.file_name,
        size=row.version_size,
        sha256=row.version_sha256,
        modified=int(row.version_created_at.timestamp()),
        # Only what the viewer plays from processed outputs (renditions, posters, web-safe audio and images).
        **(
            outputs_of(row.media_generation, row.media_renditions)
            if category(row.version_content_type) in PLAYED_FROM_OUTPUTS
            else {}
        ),
    )
    if content.kind in CAPTIONED_KINDS:
        content = replace(content, captions=tuple(tracks_of(db, link.target_id)))
    return FileState(None, path, content, until)


@dataclass(frozen=True)
class VisitFacts:
    """What a request to a link tells us about where it comes from."""

    visitor: radar.Visitor
    own_origin: str
    sec_fetch_dest: str | None = None
    sec_fetch_site: str | None = None
    referer: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Admission:
    link: Link
    refusal: str | None = None  # the `blocked` reason, when refused
    preview_only: bool = False  # a link previewer or crawler: show a card, count nothing
    target_path: tuple[uuid.UUID, ...] = ()  # the ids from the root to the link's target, when admitted
    content: ContentFacts | None = None  # a file link's file as its page shows it, when admitted


VISIT_TTL = 1.0  # seconds a usable file link's read is remembered: the most a new caption or rendition can lag
VISITS_MAX = 10_000


@dataclass(frozen=True)
class RememberedVisit:
    """A usable file link as its visits need it, kept in `visits` under the access epoch it was read in."""

    link: Link
    target_path: tuple[uuid.UUID, ...]
    content: ContentFacts
    access_until: datetime | None  # the end of the grant it is shown through, for a partner's link


# Per process. A class rush is thousands of visits to one link: they need its read, not one each. Only what
# a change can take away is remembered, under the access epoch (a revoked, suspended, edited or deleted link,
# file, folder or grant raises it); a link with a view limit is never remembered, its count decides.
visits: EpochCache[str, RememberedVisit] = EpochCache(VISIT_TTL, VISITS_MAX)


def remembered_visit(link_id: str, *, facts: VisitFacts, now: datetime, epoch: int) -> Admission | None:
    """The admission of a visit from the link's remembered read, or None when it must be read (and decided)
    afresh: not remembered, read under another epoch, or no longer usable by time."""
    hit = visits.get(link_id, epoch=epoch)
    if hit is None or links.link_status(hit.link, now) != "active":
        return None
    if hit.access_until is not None and hit.access_until <= now:
        return None
    return _admit(hit.link, facts, target_path=hit.target_path, content=hit.content)


def admit_visit(db: Session, *, link_id: str, facts: VisitFacts, now: datetime, epoch: int | None = None) -> Admission:
    """Decide whether a visit to a link may see the material, reading only (a view is counted, and a refusal
    or a sighting recorded, by the caller). NotFound for ids that name no link. With the access epoch read
    before, a usable file link's read is remembered for the next visits (`remembered_visit`)."""
    read = read_visit(db, link_id) if links.is_link_id(link_id) else None
    if read is None:
        raise NotFound("This link does not exist. Check that it was copied completely.")
    link, content = read.link, None
    if link.target_type != "file":  # a folder link: the usual path read
        state, target_path = _state_and_path(db, link, now)
    else:
        found = _file_state(db, read, now)
        state, target_path, content = found.state, found.path, found.content
        if epoch is not None and state is None and content is not None and link.max_views is None:
            remembered = RememberedVisit(link, tuple(target_path), content, found.access_until)
            visits.put(link_id, remembered, epoch=epoch)
    if state is not None:
        return Admission(link, refusal=state)
    return _admit(link, facts, target_path=tuple(target_path), content=content)


def _admit(
    link: Link, facts: VisitFacts, *, target_path: tuple[uuid.UUID, ...], content: ContentFacts | None
) -> Admission:
    """The visit's own checks on a usable link: where it is embedded, who asks, and the view limit."""
    embed = embed_refusal(
        embed_only=link.mode is LinkMode.EMBED,
        allowed=link.origins,
        own_origin=facts.own_origin,
        sec_fetch_dest=facts.sec_fetch_dest,
        sec_fetch_site=facts.sec_fetch_site,
        referer=facts.referer,
    )
    if embed is not None:
        return Admission(link, refusal=embed)
    if is_link_previewer(facts.user_agent):
        return Admission(link, preview_only=True)
    if link.max_views is not None and link.view_count >= link.max_views:
        return Admission(link, refusal="over-limit")  # used up already: the count would refuse it too
    return Admission(link, target_path=target_path, content=content)


def record_refusal(
    db: Session, *, geo: GeoLookup, link: Link, reason: str, visitor: radar.Visitor, now: datetime
) -> str | None:
    """Keep a refused visit; a refusal from an unknown site may push the link over the radar's threshold
    (returns why it was suspended now, if so)."""
    radar.record_refusal(db, geo=geo, link_id=link.id, reason=reason, visitor=visitor)
    return radar.check_spread(db, link=link, now=now) if reason in {"origin", "top-level"} else None
