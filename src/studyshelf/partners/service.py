"""Organisations, users, memberships, sign-in, sessions and API tokens."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.core.errors import Conflict, Invalid, NotAuthenticated, NotFound
from studyshelf.core.ids import new_secret, sha256_hex
from studyshelf.partners import throttle
from studyshelf.partners.models import (
    ApiToken,
    Membership,
    Organization,
    OrgKind,
    Role,
    User,
    WebSession,
)
from studyshelf.partners.permissions import Permission, acting_org_ids, require
from studyshelf.partners.principal import Principal
from studyshelf.partners.throttle import SignInKeys, ThrottlePolicy

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~100 ms here, so a burst of
# sign-ins cannot exhaust memory or CPU the way the library's 64 MiB x 4-lane default would on 2 cores.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY_HASH = _hasher.hash("timing-equaliser")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SKEW = timedelta(seconds=CLOCK_SKEW)
TOKEN_PREFIX = "ss_"  # noqa: S105 - a public prefix that makes leaked tokens easy to scan for


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    if len(password) < 8:
        raise Invalid("A password needs at least 8 characters.")
    return _hasher.hash(password)


def create_organization(db: Session, *, name: str, slug: str, kind: OrgKind) -> Organization:
    """Create an organisation (without its root folder: library.provisioning.provision_organization adds it)."""
    if not SLUG_RE.match(slug):
        raise Invalid("A slug is 1-64 lowercase letters, digits and hyphens.")
    if db.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"An organisation with the slug {slug!r} exists already.")
    org = Organization(name=name.strip() or slug, slug=slug, kind=kind)
    db.add(org)
    db.flush()
    return org


def get_organization(db: Session, org_id: uuid.UUID) -> Organization:
    org = db.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organisation.")
    return org


def get_organization_by_slug(db: Session, slug: str) -> Organization:
    org = db.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise NotFound(f"No organisation with the slug {slug!r}.")
    return org


def create_user(db: Session, *, email: str, password: str, name: str = "") -> User:
    """Create a user with an argon2id password hash."""
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid("That is not an e-mail address.")
    if db.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"A user with the e-mail {email} exists already.")
    user = User(email=email, name=name or email.split("@")[0], password_hash=hash_password(password))
    db.add(user)
    db.flush()
    return user


def add_member(db: Session, *, user: User, org: Organization, role: Role) -> Membership:
    """Give a user a role in an organisation (or change the role they have)."""
    membership = db.scalar(select(Membership).where(Membership.user_id == user.id, Membership.org_id == org.id))
    if membership is None:
        membership = Membership(user_id=user.id, org_id=org.id, role=role)
        db.add(membership)
    else:
        membership.role = role
    db.flush()
    db.refresh(user, ["memberships"])
    return membership


def authenticate(db: Session, *, email: str, password: str, client: str, policy: ThrottlePolicy, now: datetime) -> User:
    """Check a password, throttled per account and client network (partners/throttle.py); raise on failure."""
    email = email.strip().lower()
    keys = SignInKeys.of(email=email, client=client)
    throttle.check(db, keys=keys, policy=policy, now=now)
    user = db.scalar(select(User).where(User.email == email))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and user.is_active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        throttle.record_failure(db, keys=keys, now=now)
        raise NotAuthenticated("The e-mail address or password is not correct.")
    throttle.record_success(db, keys=keys)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def create_session(db: Session, *, user: User, lifetime_hours: int, now: datetime) -> tuple[WebSession, str]:
    """Start a browser session; return it and the cookie value (shown to nobody else)."""
    secret = new_secret()
    default_org = user.memberships[0].org_id if user.memberships else None
    session = WebSession(
        id=sha256_hex(secret),
        user_id=user.id,
        csrf_token=new_secret(24),
        current_org_id=default_org,
        expires_at=now + timedelta(hours=lifetime_hours),
    )
    db.add(session)
    db.flush()
    return session, secret


def resolve_session(db: Session, cookie_value: str, *, now: datetime) -> Principal | None:
    """Return the principal behind a session cookie, or None when it is unknown, expired or revoked."""
    session = db.get(WebSession, sha256_hex(cookie_value))
    # Another instance made the session; its clock may be behind ours by up to CLOCK_SKEW.
    if session is None or session.revoked_at is not None or session.expires_at + SKEW <= now:
        return None
    user = db.get(User, session.user_id)
    if user is None or not user.is_active:
        return None
    return Principal(user=user, session=session)


def end_session(db: Session, *, session: WebSession, now: datetime) -> None:
    session.revoked_at = now
    db.flush()


def create_api_token(
    db: Session,
    *,
    user: User,
    name: str,
    org_id: uuid.UUID | None = None,
    role: Role | None = None,
    acting_token: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a personal token scoped to one organisation (default: the user's first) and capped at a role.

    The cap is never above the user's role there, nor above the token used to ask for it.
    """
    memberships = sorted(user.memberships, key=lambda m: m.created_at)
    if org_id is None:
        if acting_token is not None and acting_token.org_id is not None:
            org_id = acting_token.org_id
        elif memberships:
            org_id = memberships[0].org_id
        else:
            raise Invalid("You belong to no organisation a token could be scoped to.")
    membership = next((m for m in memberships if m.org_id == org_id), None)
    if membership is None or (acting_token is not None and acting_token.org_id not in (None, org_id)):
        raise NotFound("You are not a member of that organisation.")
    ceiling = membership.role
    if acting_token is not None and acting_token.role is not None and acting_token.role.rank < ceiling.rank:
        ceiling = acting_token.role
    if role is not None and role.rank > ceiling.rank:
        raise Invalid("A token cannot have a higher role than your own.")
    role = role or ceiling
    plaintext = TOKEN_PREFIX + new_secret()
    token = ApiToken(
        user_id=user.id,
        org_id=org_id,
        role=role,
        name=name.strip()[:100] or "token",
        token_hash=sha256_hex(plaintext),
        prefix=plaintext[:10],
    )
    db.add(token)
    db.flush()
    return token, plaintext


def list_api_tokens(db: Session, *, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    return list(db.scalars(query.order_by(ApiToken.created_at.desc())))


def revoke_api_token(db: Session, *, user: User, token_id: uuid.UUID, now: datetime) -> None:
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound("No such token.")
    token.revoked_at = now
    db.flush()


def resolve_api_token(db: Session, plaintext: str, *, now: datetime) -> Principal | None:
    """Return the principal behind a bearer token, or None when it is unknown or revoked."""
    token = db.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at + SKEW <= now:
        return None
    user = db.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    return Principal(user=user, token=token)


def switch_organization(db: Session, *, principal: Principal, org_id: uuid.UUID) -> None:
    if principal.session is None or not any(m.org_id == org_id for m in principal.user.memberships):
        raise NotFound("No such organisation.")
    principal.session.current_org_id = org_id
    db.flush()


def list_organizations(db: Session, *, principal: Principal) -> list[Organization]:
    """Organisations the principal can see: its own, every operator, and every one for operator staff.

    The publisher's staff see their partners so they can share with them; partners see the publisher.
    """
    own = set(acting_org_ids(principal))
    operator_staff = principal.user.is_platform_admin or any(
        m.organization.kind is OrgKind.OPERATOR for m in principal.user.memberships if m.org_id in own
    )
    query = select(Organization)
    if not operator_staff:
        query = query.where(or_(Organization.id.in_(own), Organization.kind == OrgKind.OPERATOR))
    return list(db.scalars(query.order_by(Organization.name)))


def list_members(db: Session, *, principal: Principal, org_id: uuid.UUID) -> list[Membership]:
    """Members of an organisation the principal can read, by e-mail."""
    require(principal, Permission.LIBRARY_READ, org_id, what="organisation")
    query = select(Membership).join(User, User.id == Membership.user_id).where(Membership.org_id == org_id)
    return list(db.scalars(query.order_by(User.email)))
