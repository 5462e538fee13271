"""API shapes for organisations, users and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from studyshelf.partners.audit import AuditFilter
from studyshelf.partners.models import OrgKind, Role

# Text that is stored or compared in SQL: PostgreSQL refuses NUL in text, so refuse control characters here (422).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=NO_CONTROL)
    password: str = Field(min_length=1, max_length=1024)


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    kind: OrgKind


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    is_platform_admin: bool


class LoginResponse(BaseModel):
    user: UserRead
    csrf_token: str


class MemberRead(BaseModel):
    user: UserRead
    role: Role
    created_at: datetime


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_CONTROL)
    org_id: uuid.UUID | None = None
    role: Role | None = None


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    org_id: uuid.UUID | None
    role: Role | None
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret; shown only this once.")


class MemberUpdate(BaseModel):
    role: Role


class InvitationCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=NO_CONTROL)
    role: Role = Role.VIEWER


class InvitationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationRead):
    url: str = Field(description="The single-use link; shown only this once.")
    emailed: bool = Field(description="Whether the link was also sent by e-mail.")


class InvitationAccept(BaseModel):
    token: str = Field(min_length=10, max_length=200, pattern=NO_CONTROL)
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    name: str = Field(default="", max_length=200, pattern=NO_CONTROL)


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor_email: str
    via_platform_admin: bool
    action: str
    target_type: str
    target_id: str
    target_label: str
    before: str
    after: str
    request_id: str


class AuditQuery(BaseModel):
    actor: str | None = Field(default=None, max_length=320, pattern=NO_CONTROL)
    action: str | None = Field(default=None, max_length=64, pattern=NO_CONTROL)
    target: str | None = Field(default=None, max_length=300, pattern=NO_CONTROL)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000)

    def to_filter(self) -> AuditFilter:
        return AuditFilter(actor=self.actor, action=self.action, target=self.target, since=self.since, until=self.until)
