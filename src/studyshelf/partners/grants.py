"""Grants: an owning organisation shares a folder or a file with another organisation.

Whether a grant is live depends on "now": callers pass `now`, read from the services' clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Invalid, NotFound
from studyshelf.partners import audit
from studyshelf.partners.models import Grant, GrantLevel, Organization, TargetType
from studyshelf.partners.permissions import Permission, acting_org_ids, allows, require
from studyshelf.partners.principal import Principal


def active_grants(
    db: Session,
    *,
    target_ids: Sequence[uuid.UUID],
    grantee_org_ids: Sequence[uuid.UUID],
    now: datetime,
) -> list[Grant]:
    """Live grants on any of the targets to any of the organisations (one indexed query)."""
    if not target_ids or not grantee_org_ids:
        return []
    query = select(Grant).where(
        Grant.target_id.in_(list(target_ids)),
        Grant.grantee_org_id.in_(list(grantee_org_ids)),
        Grant.revoked_at.is_(None),
        or_(Grant.expires_at.is_(None), Grant.expires_at > now),
    )
    return list(db.scalars(query))


def grants_for_principal(
    db: Session, *, principal: Principal, target_ids: Sequence[uuid.UUID], now: datetime
) -> list[Grant]:
    return active_grants(db, target_ids=target_ids, grantee_org_ids=acting_org_ids(principal), now=now)


def create_grant(
    db: Session,
    *,
    principal: Principal,
    owner_org_id: uuid.UUID,
    target_type: TargetType,
    target_id: uuid.UUID,
    target_label: str,
    grantee_org_id: uuid.UUID,
    level: GrantLevel,
    expires_at: datetime | None,
    now: datetime,
) -> Grant:
    """Share a live item the caller's organisation owns (the library checks the item exists and is live)."""
    require(principal, Permission.LIBRARY_SHARE, owner_org_id, what=target_type.value)
    if grantee_org_id == owner_org_id:
        raise Invalid("An organisation cannot share with itself.")
    if db.get(Organization, grantee_org_id) is None:
        raise Invalid("There is no organisation with that id to share with.")
    if expires_at is not None and expires_at <= now:
        raise Invalid("The expiry must be in the future.")
    existing = active_grants(db, target_ids=[target_id], grantee_org_ids=[grantee_org_id], now=now)
    for old in existing:  # one live grant per item and grantee: a new one replaces the old
        old.revoked_at = now
    grant = Grant(
        owner_org_id=owner_org_id,
        grantee_org_id=grantee_org_id,
        target_type=target_type,
        target_id=target_id,
        level=level,
        expires_at=expires_at,
        created_by=principal.user.id,
    )
    db.add(grant)
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=owner_org_id,
        action="grant.create",
        target_type=target_type.value,
        target_id=target_id,
        target_label=target_label,
        after={"grantee_org_id": grantee_org_id, "level": level.value, "expires_at": expires_at},
    )
    return grant


def get_grant(db: Session, *, principal: Principal, grant_id: uuid.UUID) -> Grant:
    grant = db.get(Grant, grant_id)
    if grant is None or not (
        allows(principal, Permission.LIBRARY_SHARE, grant.owner_org_id)
        or allows(principal, Permission.LIBRARY_READ, grant.grantee_org_id)
    ):
        raise NotFound("No such grant.")
    return grant


def revoke_grant(db: Session, *, principal: Principal, grant_id: uuid.UUID, now: datetime) -> Grant:
    """End a grant at once: everything reached through it (links, LMS placements) stops with it."""
    grant = get_grant(db, principal=principal, grant_id=grant_id)
    require(principal, Permission.LIBRARY_SHARE, grant.owner_org_id, what="grant")
    if grant.revoked_at is None:
        grant.revoked_at = now
        db.flush()
        audit.record(
            db,
            principal=principal,
            org_id=grant.owner_org_id,
            action="grant.revoke",
            target_type=grant.target_type.value,
            target_id=grant.target_id,
            before={"grantee_org_id": grant.grantee_org_id, "level": grant.level.value},
        )
    return grant


def grants_on(
    db: Session,
    *,
    principal: Principal,
    owner_org_id: uuid.UUID,
    target_id: uuid.UUID,
    now: datetime,
) -> list[Grant]:
    """Live grants on one item, for the owner's admins (the share dialog)."""
    require(principal, Permission.LIBRARY_SHARE, owner_org_id, what="item")
    query = select(Grant).where(
        Grant.owner_org_id == owner_org_id,
        Grant.target_id == target_id,
        Grant.revoked_at.is_(None),
        or_(Grant.expires_at.is_(None), Grant.expires_at > now),
    )
    return list(db.scalars(query.order_by(Grant.created_at)))


def grants_to(db: Session, *, grantee_org_id: uuid.UUID, now: datetime) -> list[Grant]:
    """Live grants an organisation has received (the 'Shared with us' roots)."""
    query = select(Grant).where(
        Grant.grantee_org_id == grantee_org_id,
        Grant.revoked_at.is_(None),
        or_(Grant.expires_at.is_(None), Grant.expires_at > now),
    )
    return list(db.scalars(query.order_by(Grant.created_at)))


def org_has_access(
    db: Session,
    *,
    org_id: uuid.UUID,
    owner_org_id: uuid.UUID,
    path_ids: Sequence[uuid.UUID],
    now: datetime,
) -> bool:
    """Whether an organisation still reaches an item (its own, or through a live grant on its path).

    The hook for links and LMS placements: they check this at every use, so revoking or expiring a
    grant stops everything created under it at once.
    """
    return org_access_until(db, org_id=org_id, owner_org_id=owner_org_id, path_ids=path_ids, now=now) is not False


def org_access_until(
    db: Session,
    *,
    org_id: uuid.UUID,
    owner_org_id: uuid.UUID,
    path_ids: Sequence[uuid.UUID],
    now: datetime,
) -> datetime | Literal[False] | None:
    """When an organisation's reach of an item ends by time: None for never (its own, or a grant without an
    end), the latest end of its live grants on the path, or False when it has no access now."""
    if org_id == owner_org_id:
        return None
    grants = active_grants(db, target_ids=path_ids, grantee_org_ids=[org_id], now=now)
    if not grants:
        return False
    ends = [grant.expires_at for grant in grants]
    return None if any(end is None for end in ends) else max(end for end in ends if end is not None)
