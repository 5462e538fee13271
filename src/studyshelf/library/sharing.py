"""Sharing library items with partner organisations (grants), and what has been shared with us."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from studyshelf.core.errors import NotFound
from studyshelf.library.access import content_path_ids
from studyshelf.library.models import File, Folder
from studyshelf.partners import grants
from studyshelf.partners.models import Grant, GrantLevel, Organization, TargetType
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal


def _live_target(
    db: Session, *, target_type: TargetType, target_id: uuid.UUID
) -> tuple[Folder | File, list[uuid.UUID]]:
    found = content_path_ids(db, target_type=target_type.value, target_id=target_id)
    item = db.get(Folder, target_id) if target_type is TargetType.FOLDER else db.get(File, target_id)
    if found is None or item is None:
        raise NotFound(f"No such {target_type.value} (it may be in the trash).")
    return item, found[1]


def share(
    db: Session,
    *,
    principal: Principal,
    target_type: TargetType,
    target_id: uuid.UUID,
    grantee_org_id: uuid.UUID,
    level: GrantLevel,
    expires_at: datetime | None,
    now: datetime,
) -> Grant:
    """Grant another organisation view or manage on a live item the caller's organisation owns."""
    item, _path = _live_target(db, target_type=target_type, target_id=target_id)
    return grants.create_grant(
        db,
        principal=principal,
        owner_org_id=item.org_id,
        target_type=target_type,
        target_id=target_id,
        target_label=item.name,
        grantee_org_id=grantee_org_id,
        level=level,
        expires_at=expires_at,
        now=now,
    )


def grants_on_item(
    db: Session, *, principal: Principal, target_type: TargetType, target_id: uuid.UUID, now: datetime
) -> list[Grant]:
    """Current grants on an item (its owner's admins only)."""
    item, _path = _live_target(db, target_type=target_type, target_id=target_id)
    return grants.grants_on(db, principal=principal, owner_org_id=item.org_id, target_id=target_id, now=now)


@dataclass(frozen=True)
class SharedItem:
    grant: Grant
    kind: str
    name: str
    owner: Organization


def shared_with(db: Session, *, principal: Principal, org_id: uuid.UUID, now: datetime) -> list[SharedItem]:
    """Live items other organisations shared with this one (the roots of 'Shared with us')."""
    require(principal, Permission.LIBRARY_READ, org_id, what="organisation")
    result = []
    for grant in grants.grants_to(db, grantee_org_id=org_id, now=now):
        if content_path_ids(db, target_type=grant.target_type.value, target_id=grant.target_id) is None:
            continue
        item = (
            db.get(Folder, grant.target_id) if grant.target_type is TargetType.FOLDER else db.get(File, grant.target_id)
        )
        owner = db.get(Organization, grant.owner_org_id)
        if item is not None and owner is not None:
            result.append(SharedItem(grant=grant, kind=grant.target_type.value, name=item.name, owner=owner))
    return sorted(result, key=lambda s: (s.owner.name, s.kind, s.name.casefold()))
