"""Admission: whether one visit to a share link may see the material (a read; the viewer counts and records)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from studyshelf.core.errors import NotFound
from studyshelf.core.geo import GeoLookup
from studyshelf.delivery import links, radar
from studyshelf.delivery.embed import embed_refusal, is_link_previewer
from studyshelf.delivery.models import Link, LinkMode
from studyshelf.library.access import content_path_ids
from studyshelf.partners.grants import org_has_access


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


def admit_visit(db: Session, *, link_id: str, facts: VisitFacts, now: datetime) -> Admission:
    """Decide whether a visit to a link may see the material, reading only (a view is counted, and a refusal
    or a sighting recorded, by the caller). NotFound for ids that name no link."""
    link = db.get(Link, link_id) if links.is_link_id(link_id) else None
    if link is None:
        raise NotFound("This link does not exist. Check that it was copied completely.")
    state, target_path = _state_and_path(db, link, now)
    if state is not None:
        return Admission(link, refusal=state)
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
    return Admission(link, target_path=tuple(target_path))


def record_refusal(
    db: Session, *, geo: GeoLookup, link: Link, reason: str, visitor: radar.Visitor, now: datetime
) -> str | None:
    """Keep a refused visit; a refusal from an unknown site may push the link over the radar's threshold
    (returns why it was suspended now, if so)."""
    radar.record_refusal(db, geo=geo, link_id=link.id, reason=reason, visitor=visitor)
    return radar.check_spread(db, link=link, now=now) if reason in {"origin", "top-level"} else None
