"""Members and invitations: who belongs to an organisation, with which role."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from studyshelf.core.ids import new_secret, sha256_hex
from studyshelf.partners import audit
from studyshelf.partners.models import ApiToken, Invitation, Membership, Organization, Role, User, WebSession
from studyshelf.partners.permissions import Permission, assignable_roles, require, role_in
from studyshelf.partners.principal import Principal
from studyshelf.partners.service import add_member, create_user

INVITATION_LIFETIME = timedelta(days=7)


def _membership(db: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = db.scalar(select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No such member.")
    return membership


def _owner_count(db: Session, org_id: uuid.UUID) -> int:
    query = (
        select(func.count()).select_from(Membership).where(Membership.org_id == org_id, Membership.role == Role.OWNER)
    )
    return db.scalar(query) or 0


def _check_can_manage(principal: Principal, org_id: uuid.UUID, target_role: Role) -> None:
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    own = role_in(principal, org_id)
    if own is None or target_role.rank > own.rank:
        raise PermissionDenied("Only an owner can change or remove an owner.")


def change_role(db: Session, *, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> Membership:
    """Give a member another role; the last owner stays an owner."""
    membership = _membership(db, org_id=org_id, user_id=user_id)
    _check_can_manage(principal, org_id, membership.role)
    if role not in assignable_roles(principal, org_id):
        raise PermissionDenied(f"You cannot give the role {role.value}.")
    if membership.role is Role.OWNER and role is not Role.OWNER and _owner_count(db, org_id) <= 1:
        raise Conflict("The last owner cannot be demoted; make someone else an owner first.")
    before = membership.role
    membership.role = role
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="member.role_change",
        target_type="user",
        target_id=user_id,
        target_label=membership.user.email,
        before={"role": before.value},
        after={"role": role.value},
    )
    return membership


def remove_member(db: Session, *, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> None:
    """Remove a member; their tokens for this organisation stop working at once."""
    membership = _membership(db, org_id=org_id, user_id=user_id)
    if user_id != principal.user.id:
        _check_can_manage(principal, org_id, membership.role)
    if membership.role is Role.OWNER and _owner_count(db, org_id) <= 1:
        raise Conflict("The last owner cannot be removed; make someone else an owner first.")
    email = membership.user.email
    db.delete(membership)
    db.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.org_id == org_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    db.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.current_org_id == org_id)
        .values(current_org_id=None)
    )
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="member.remove",
        target_type="user",
        target_id=user_id,
        target_label=email,
    )


def create_invitation(
    db: Session, *, principal: Principal, org_id: uuid.UUID, email: str, role: Role, now: datetime
) -> tuple[Invitation, str]:
    """Invite someone by e-mail; return the invitation and the secret for its single-use link."""
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    if role not in assignable_roles(principal, org_id):
        raise PermissionDenied(f"You cannot invite someone as {role.value}.")
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise Invalid("That is not an e-mail address.")
    already = db.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, User.email == email)
    )
    if already is not None:
        raise Conflict(f"{email} is a member already.")
    secret = new_secret()
    invitation = Invitation(
        org_id=org_id,
        email=email,
        role=role,
        token_hash=sha256_hex(secret),
        invited_by=principal.user.id,
        expires_at=now + INVITATION_LIFETIME,
    )
    db.add(invitation)
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="invitation.create",
        target_type="invitation",
        target_id=invitation.id,
        target_label=email,
        after={"role": role.value},
    )
    return invitation, secret


def list_invitations(db: Session, *, principal: Principal, org_id: uuid.UUID, now: datetime) -> list[Invitation]:
    """Invitations not yet accepted, revoked or expired."""
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    query = select(Invitation).where(
        Invitation.org_id == org_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )
    return list(db.scalars(query.order_by(Invitation.created_at.desc())))


def revoke_invitation(db: Session, *, principal: Principal, invitation_id: uuid.UUID, now: datetime) -> None:
    invitation = db.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    require(principal, Permission.MEMBERS_MANAGE, invitation.org_id, what="invitation")
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = now
        audit.record(
            db,
            principal=principal,
            org_id=invitation.org_id,
            action="invitation.revoke",
            target_type="invitation",
            target_id=invitation.id,
            target_label=invitation.email,
        )
    db.flush()


def open_invitation(db: Session, *, secret: str, now: datetime) -> tuple[Invitation, Organization]:
    """The invitation behind a link, if it can still be accepted; Invalid/NotFound with the reason otherwise."""
    invitation = db.scalar(select(Invitation).where(Invitation.token_hash == sha256_hex(secret)))
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise Invalid("This invitation has been used already.")
    if invitation.revoked_at is not None:
        raise Invalid("This invitation was withdrawn.")
    if invitation.expires_at <= now:
        raise Invalid("This invitation has expired; ask for a new one.")
    org = db.get(Organization, invitation.org_id)
    assert org is not None
    return invitation, org


def invitee_has_account(db: Session, *, invitation: Invitation) -> bool:
    """Whether the invited address already has an account (it signs in to join, rather than signing up)."""
    return db.scalar(select(User.id).where(User.email == invitation.email)) is not None


def accept_invitation(
    db: Session,
    *,
    secret: str,
    user: User | None,
    now: datetime,
    password: str | None = None,
    name: str = "",
) -> User:
    """Join through an invitation, as the signed-in user (same e-mail) or as a new account."""
    invitation, org = open_invitation(db, secret=secret, now=now)
    if user is None:
        if db.scalar(select(User.id).where(User.email == invitation.email)) is not None:
            raise Conflict("An account with this e-mail exists; sign in first, then open the link again.")
        if not password:
            raise Invalid("Choose a password to create your account.")
        user = create_user(db, email=invitation.email, password=password, name=name)
    elif user.email != invitation.email:
        raise PermissionDenied(f"This invitation is for {invitation.email}; sign in with that address.")
    existing = next((m for m in user.memberships if m.org_id == org.id), None)
    role = invitation.role if existing is None or invitation.role.rank > existing.role.rank else existing.role
    add_member(db, user=user, org=org, role=role)
    invitation.accepted_at = now
    invitation.accepted_by = user.id
    db.flush()
    audit.record(
        db,
        principal=Principal(user=user),
        org_id=org.id,
        action="invitation.accept",
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        after={"role": role.value},
    )
    return user
