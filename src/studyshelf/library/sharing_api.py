"""JSON routes for grants: share with partners, see and revoke shares, and what is shared with us."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict

from studyshelf.library import sharing
from studyshelf.partners import grants
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now
from studyshelf.partners.models import GrantLevel, TargetType

router = APIRouter(prefix="/api/v1", tags=["sharing"])


class GrantCreate(BaseModel):
    target_type: TargetType
    target_id: uuid.UUID
    grantee_org_id: uuid.UUID
    level: GrantLevel
    expires_at: datetime | None = None


class GrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_org_id: uuid.UUID
    grantee_org_id: uuid.UUID
    target_type: TargetType
    target_id: uuid.UUID
    level: GrantLevel
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None


class SharedItemRead(BaseModel):
    grant: GrantRead
    kind: TargetType
    name: str
    owner_org_id: uuid.UUID
    owner_name: str


@router.post("/grants", response_model=GrantRead, status_code=status.HTTP_201_CREATED)
def create_grant(body: GrantCreate, principal: CurrentPrincipal, db: DbSession, now: Now) -> GrantRead:
    """Share a folder (with everything below it) or a file with another organisation."""
    grant = sharing.share(
        db,
        principal=principal,
        target_type=body.target_type,
        target_id=body.target_id,
        grantee_org_id=body.grantee_org_id,
        level=body.level,
        expires_at=body.expires_at,
        now=now,
    )
    return GrantRead.model_validate(grant)


@router.get("/grants", response_model=list[GrantRead])
def list_grants(
    target_type: TargetType, target_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now
) -> list[GrantRead]:
    """Current grants on one item (its owner's admins)."""
    found = sharing.grants_on_item(db, principal=principal, target_type=target_type, target_id=target_id, now=now)
    return [GrantRead.model_validate(g) for g in found]


@router.delete("/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_grant(grant_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """Revoke a grant; access through it ends at once."""
    grants.revoke_grant(db, principal=principal, grant_id=grant_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/orgs/{org_id}/shared", response_model=list[SharedItemRead])
def shared_with_us(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> list[SharedItemRead]:
    """Folders and files other organisations share with this one."""
    return [
        SharedItemRead(
            grant=GrantRead.model_validate(item.grant),
            kind=TargetType(item.kind),
            name=item.name,
            owner_org_id=item.owner.id,
            owner_name=item.owner.name,
        )
        for item in sharing.shared_with(db, principal=principal, org_id=org_id, now=now)
    ]
