"""LTI tables: our signing keys, the platforms registered by partners, used nonces, launches, picker sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.clock import utcnow
from studyshelf.core.db import Base
from studyshelf.core.ids import new_id


class ToolKey(Base):
    """An RSA key StudyShelf signs with (deep-linking responses); see lti/keys.py for its states."""

    __tablename__ = "lti_tool_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)  # PKCS#8, encrypted under a passphrase from core/keys.py
    public_jwk: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    signs_from: Mapped[datetime] = mapped_column(default=utcnow)  # published before, so cached JWKS know it
    retired_at: Mapped[datetime | None] = mapped_column(default=None)  # stops signing; published for the grace


class Registration(Base):
    """An LMS platform connected to a partner organisation; launches are keyed by (issuer, client_id)."""

    __tablename__ = "lti_registrations"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_registrations_issuer_client"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(300))
    deployment_ids: Mapped[str] = mapped_column(Text, default="")  # one per line
    auth_url: Mapped[str] = mapped_column(String(500))
    token_url: Mapped[str] = mapped_column(String(500), default="")
    jwks_url: Mapped[str] = mapped_column(String(500))
    origins: Mapped[str] = mapped_column(Text, default="")  # LMS origins that frame us, one per line
    product_family: Mapped[str] = mapped_column(String(64), default="")
    dynamic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def deployments(self) -> list[str]:
        return [d for d in self.deployment_ids.split("\n") if d]

    @property
    def origin_list(self) -> list[str]:
        return [o for o in self.origins.split("\n") if o]


class RegistrationInvite(Base):
    """A single-use dynamic-registration URL: the URL carries a random token, only its hash is kept."""

    __tablename__ = "lti_registration_invites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    registration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="SET NULL"), default=None
    )
    used_by: Mapped[str] = mapped_column(String(300), default="")  # the platform, kept if it is disconnected
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class UsedNonce(Base):
    """A nonce of an accepted id_token: each may be used once (kept until the token would have expired)."""

    __tablename__ = "lti_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Launch(Base):
    """One accepted resource-link launch, for analytics. No names, no e-mail addresses."""

    __tablename__ = "lti_launches"
    __table_args__ = (
        Index("ix_lti_launches_target", "target_id"),
        Index("ix_lti_launches_placement", "registration_id", "resource_link_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lti_registrations.id", ondelete="SET NULL"))
    deployment_id: Mapped[str] = mapped_column(String(300), default="")
    product_family: Mapped[str] = mapped_column(String(64), default="")
    context_id: Mapped[str] = mapped_column(String(300), default="")
    context_title: Mapped[str] = mapped_column(String(300), default="")
    resource_link_id: Mapped[str] = mapped_column(String(300), default="")
    role_class: Mapped[str] = mapped_column(String(16), default="")  # learner | instructor | other
    learner: Mapped[str] = mapped_column(String(64), default="")  # HMAC of iss + client_id + sub
    lti11_user_id: Mapped[str] = mapped_column(String(300), default="")
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID] = mapped_column()
    frame_origins: Mapped[str] = mapped_column(Text, default="")  # one per line: who may frame this launch
    locale: Mapped[str] = mapped_column(String(35), default="")  # launch_presentation.locale: the viewer's language


class PickerSession(Base):
    """A deep-linking request being answered: what the platform accepts and where the answer goes."""

    __tablename__ = "lti_picker_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    registration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lti_registrations.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(300))
    return_url: Mapped[str] = mapped_column(String(2000))
    data: Mapped[str | None] = mapped_column(Text, default=None)
    accept_multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    targets: Mapped[str] = mapped_column(String(200), default="")  # accepted document targets, comma separated
    frame_origins: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
