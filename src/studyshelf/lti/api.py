"""JSON API for partner admins: LMS registrations, registration URLs, and the values to set StudyShelf up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from studyshelf.lti import invites, registrations
from studyshelf.lti.models import Registration
from studyshelf.lti.tool_config import canvas_developer_key, manual_values
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.permissions import Permission, require

router = APIRouter(prefix="/api/v1/lti", tags=["LMS (LTI 1.3)"])


class RegistrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID
    issuer: str = Field(max_length=300)
    client_id: str = Field(max_length=300)
    deployment_ids: list[str] = Field(default_factory=list, max_length=100)
    auth_url: str = Field(max_length=500)
    token_url: str = Field(default="", max_length=500)
    jwks_url: str = Field(max_length=500)
    origins: list[str] = Field(default_factory=list, max_length=20)
    name: str = Field(default="", max_length=200)


class RegistrationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_ids: list[str] = Field(max_length=100)


class RegistrationRead(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    issuer: str
    client_id: str
    deployment_ids: list[str]
    auth_url: str
    token_url: str
    jwks_url: str
    origins: list[str]
    product_family: str
    dynamic: bool
    created_at: datetime

    @classmethod
    def of(cls, r: Registration) -> RegistrationRead:
        return cls(
            id=r.id,
            org_id=r.org_id,
            name=r.name,
            issuer=r.issuer,
            client_id=r.client_id,
            deployment_ids=r.deployments,
            auth_url=r.auth_url,
            token_url=r.token_url,
            jwks_url=r.jwks_url,
            origins=r.origin_list,
            product_family=r.product_family,
            dynamic=r.dynamic,
            created_at=r.created_at,
        )


class ToolConfiguration(BaseModel):
    manual: dict[str, str]
    canvas_developer_key: dict[str, Any]


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID


class InviteRead(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    state: invites.InviteState
    created_at: datetime
    created_by_email: str
    expires_at: datetime
    used_at: datetime | None
    used_by: str
    registration_id: uuid.UUID | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, view: invites.InviteView) -> InviteRead:
        i = view.invite
        return cls(
            id=i.id,
            org_id=i.org_id,
            state=view.state,
            created_at=i.created_at,
            created_by_email=i.created_by_email,
            expires_at=i.expires_at,
            used_at=i.used_at,
            used_by=i.used_by,
            registration_id=i.registration_id,
            revoked_at=i.revoked_at,
        )


class InviteCreated(InviteRead):
    url: str  # shown only in this answer: StudyShelf keeps its hash


@router.get("/registrations")
def list_registrations(org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[RegistrationRead]:
    """The LMS platforms connected to an organisation (its admins)."""
    return [RegistrationRead.of(r) for r in registrations.list_registrations(db, principal=principal, org_id=org_id)]


@router.post("/registrations", status_code=201)
def create_registration(
    body: RegistrationCreate, db: DbSession, principal: CurrentPrincipal, services: ServicesDep
) -> RegistrationRead:
    """Register an LMS platform by hand (issuer, client ID, deployments, OIDC auth, token and JWKS URLs)."""
    spec = registrations.RegistrationSpec(**body.model_dump(exclude={"org_id"}))
    created = registrations.create_registration(
        db,
        principal=principal,
        org_id=body.org_id,
        spec=spec,
        allow_loopback_http=services.settings.environment != "production",
    )
    return RegistrationRead.of(created)


@router.patch("/registrations/{registration_id}")
def update_registration(
    registration_id: uuid.UUID, body: RegistrationUpdate, db: DbSession, principal: CurrentPrincipal
) -> RegistrationRead:
    """Replace the deployment ids a registration accepts."""
    updated = registrations.set_deployments(
        db, principal=principal, registration_id=registration_id, deployment_ids=body.deployment_ids
    )
    return RegistrationRead.of(updated)


@router.delete("/registrations/{registration_id}", status_code=204)
def delete_registration(registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    """Disconnect a platform; its launches stop at once."""
    registrations.delete_registration(db, principal=principal, registration_id=registration_id)
    return Response(status_code=204)


@router.get("/tool-configuration")
def tool_configuration(org_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> ToolConfiguration:
    """StudyShelf's values for a manual LMS set-up and the Canvas key JSON (registration URLs: registration-invites)."""
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    settings = services.settings
    return ToolConfiguration(
        manual=manual_values(settings),
        canvas_developer_key=canvas_developer_key(settings),
    )


@router.post("/registration-invites", status_code=201)
def create_invite(
    body: InviteCreate, db: DbSession, principal: CurrentPrincipal, services: ServicesDep, now: Now
) -> InviteCreated:
    """A single-use dynamic-registration URL (organisation admins); the URL is in this answer only."""
    invite, token = invites.create_invite(
        db, principal=principal, org_id=body.org_id, settings=services.settings, now=now
    )
    read = InviteRead.of(invites.InviteView(invite, "unused"))
    return InviteCreated(**read.model_dump(), url=invites.invite_url(services.settings, token))


@router.get("/registration-invites")
def list_invites(org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal, now: Now) -> list[InviteRead]:
    """The organisation's registration URLs with their state: unused, used (by which platform), expired, revoked."""
    return [InviteRead.of(v) for v in invites.list_invites(db, principal=principal, org_id=org_id, now=now)]


@router.post("/registration-invites/{invite_id}/revoke")
def revoke_invite(invite_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal, now: Now) -> InviteRead:
    """Make an unused registration URL unusable."""
    invite = invites.revoke_invite(db, principal=principal, invite_id=invite_id, now=now)
    return InviteRead.of(invites.InviteView(invite, invites.state_of(invite, now)))
