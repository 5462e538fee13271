"""Single-use dynamic-registration URLs ("invites"): created and revoked by an organisation's admins.

The URL carries a random 256-bit token; the table keeps only its SHA-256. Using one is a conditional
UPDATE (unused, unrevoked, unexpired) committed before StudyShelf talks to the platform, so two LMSs
racing on one URL cannot both register. A failed registration gives the URL back; a successful one is
audited and, after commit, e-mailed to the organisation's admins.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from studyshelf.core.db import affected_rows
from studyshelf.core.errors import NotFound, PermissionDenied, StudyShelfError
from studyshelf.core.ids import new_secret, sha256_hex
from studyshelf.lti.models import Registration, RegistrationInvite
from studyshelf.lti.web import base_url
from studyshelf.mail import Message
from studyshelf.notify import service as notify
from studyshelf.partners import audit
from studyshelf.partners.models import Membership, Organization, Role, User
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.settings import Settings
from studyshelf.web.i18n import N_

log = logging.getLogger(__name__)
InviteState = Literal["unused", "used", "expired", "revoked"]
ADMIN_ROLES = (Role.ADMIN, Role.OWNER)


class InviteGone(StudyShelfError):
    """A registration URL that was real but can no longer be used."""

    status = 410
    type_slug = "lti-registration-url-gone"
    title = "This registration URL can no longer be used"


UNKNOWN = N_("This registration URL is not valid. Create a new one on Organisation → LMS connections in StudyShelf.")


def invite_url(settings: Settings, token: str) -> str:
    return f"{base_url(settings)}/lti/register?invite={token}"


def create_invite(
    db: Session, *, principal: Principal, org_id: uuid.UUID, settings: Settings, now: datetime
) -> tuple[RegistrationInvite, str]:
    """A new registration URL for the organisation (its admins): the invite, and the token shown once."""
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    token = new_secret(32)
    invite = RegistrationInvite(
        org_id=org_id,
        token_hash=sha256_hex(token),
        created_by=principal.user.id,
        created_by_email=principal.user.email,
        created_at=now,
        expires_at=now + settings.lti_registration_link_lifetime,
    )
    db.add(invite)
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="lti.registration_invite.create",
        target_type="lti_registration_invite",
        target_id=invite.id,
        after={"expires_at": invite.expires_at.isoformat()},
    )
    return invite, token


def revoke_invite(db: Session, *, principal: Principal, invite_id: uuid.UUID, now: datetime) -> RegistrationInvite:
    """Make an unused registration URL unusable (its organisation's admins)."""
    invite = db.get(RegistrationInvite, invite_id)
    if invite is None:
        raise NotFound("No such registration URL.")
    require(principal, Permission.MEMBERS_MANAGE, invite.org_id, what="organisation")
    if invite.revoked_at is None and invite.used_at is None:
        invite.revoked_at = now
        db.flush()
        audit.record(
            db,
            principal=principal,
            org_id=invite.org_id,
            action="lti.registration_invite.revoke",
            target_type="lti_registration_invite",
            target_id=invite.id,
        )
    return invite


@dataclass(frozen=True)
class InviteView:
    invite: RegistrationInvite
    state: InviteState


def state_of(invite: RegistrationInvite, now: datetime) -> InviteState:
    if invite.used_at is not None:
        return "used"
    if invite.revoked_at is not None:
        return "revoked"
    return "expired" if invite.expires_at <= now else "unused"


def list_invites(
    db: Session, *, principal: Principal, org_id: uuid.UUID, limit: int = 50, now: datetime
) -> list[InviteView]:
    """The organisation's registration URLs, newest first, each with its state."""
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    query = select(RegistrationInvite).where(RegistrationInvite.org_id == org_id)
    found = db.scalars(query.order_by(RegistrationInvite.created_at.desc()).limit(limit))
    return [InviteView(invite, state_of(invite, now)) for invite in found]


def _refusal(invite: RegistrationInvite | None, now: datetime) -> StudyShelfError:
    if invite is None:
        return PermissionDenied(UNKNOWN)
    state = state_of(invite, now)
    if state == "used":
        return InviteGone(
            N_(
                "This registration URL has already been used. "
                "Create a new one on Organisation → LMS connections in StudyShelf."
            )
        )
    if state == "revoked":
        return InviteGone(
            N_("This registration URL was revoked. Create a new one on Organisation → LMS connections in StudyShelf.")
        )
    return InviteGone(
        N_("This registration URL has expired. Create a new one on Organisation → LMS connections in StudyShelf.")
    )


def check_invite(db: Session, *, token: str, now: datetime) -> RegistrationInvite:
    """The usable invite a token names, or a 403 (not issued) / 410 (used, revoked, expired) error."""
    invite = db.scalars(select(RegistrationInvite).where(RegistrationInvite.token_hash == sha256_hex(token))).first()
    if invite is None or state_of(invite, now) != "unused":
        raise _refusal(invite, now)
    return invite


def claim_invite(db: Session, *, token: str, now: datetime) -> RegistrationInvite:
    """Mark the invite used, atomically: of two concurrent claims exactly one succeeds (commit right after)."""
    token_hash = sha256_hex(token)
    claimed = db.execute(
        update(RegistrationInvite)
        .where(
            RegistrationInvite.token_hash == token_hash,
            RegistrationInvite.used_at.is_(None),
            RegistrationInvite.revoked_at.is_(None),
            RegistrationInvite.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    invite = db.scalars(select(RegistrationInvite).where(RegistrationInvite.token_hash == token_hash)).first()
    if affected_rows(claimed) != 1 or invite is None:
        raise _refusal(invite, now)
    return invite


def release_invite(db: Session, *, invite_id: uuid.UUID) -> None:
    """Give a claimed invite back after the registration failed, so the admin can try the same URL again."""
    db.execute(
        update(RegistrationInvite)
        .where(RegistrationInvite.id == invite_id, RegistrationInvite.registration_id.is_(None))
        .values(used_at=None)
        .execution_options(synchronize_session=False)
    )


def complete_invite(db: Session, *, invite_id: uuid.UUID, registration: Registration, now: datetime) -> None:
    """Record which platform used the invite, audit it, and queue the notices to its admins (sent after commit)."""
    invite = db.get(RegistrationInvite, invite_id)
    assert invite is not None  # claimed in this request
    invite.registration_id = registration.id
    invite.used_by = f"{registration.name} ({registration.issuer})"[:300]
    db.flush()
    audit.record(
        db,
        principal=None,
        org_id=invite.org_id,
        action="lti.registration_invite.use",
        target_type="lti_registration_invite",
        target_id=invite.id,
        target_label=registration.name,
        after={
            "registration_id": str(registration.id),
            "issuer": registration.issuer,
            "client_id": registration.client_id,
            "invite_created_by": invite.created_by_email,
        },
    )
    for message in registration_notices(db, invite=invite, registration=registration):
        notify.enqueue_email(
            db, to=message.to, subject=message.subject, text=message.text, event="lti.registered", now=now
        )


def registration_notices(db: Session, *, invite: RegistrationInvite, registration: Registration) -> list[Message]:
    """One e-mail per admin or owner of the organisation: an LMS was connected through a registration URL."""
    org = db.get(Organization, invite.org_id)
    query = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == invite.org_id, Membership.role.in_(ADMIN_ROLES), User.is_active.is_(True))
    )
    org_name = org.name if org else "your organisation"
    used_at = invite.used_at.strftime("%Y-%m-%d %H:%M UTC") if invite.used_at else ""
    text = (
        f"An LMS was connected to {org_name} on StudyShelf through a dynamic-registration URL.\n\n"
        f"Platform: {registration.name}\nIssuer: {registration.issuer}\nClient ID: {registration.client_id}\n"
        f"When: {used_at}\nURL created by: {invite.created_by_email or 'unknown'} on "
        f"{invite.created_at.strftime('%Y-%m-%d %H:%M UTC')}\n\n"
        "If you do not recognise this platform, disconnect it at once on Organisation → LMS connections.\n"
    )
    subject = f"LMS connected to {org_name} on StudyShelf: {registration.name}"
    return [Message(to=email, subject=subject, text=text) for email in db.scalars(query)]
