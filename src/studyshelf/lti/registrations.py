"""Platforms (Moodle sites, Canvas accounts) registered to a partner organisation.

Registrations are keyed by (issuer, client_id): Canvas uses one issuer for every cloud customer.
Their origins are the partner's LMS origins: they join the organisation's default embed origins
and are the `frame-ancestors` of what a launch shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, Invalid, NotFound
from studyshelf.delivery.embed import normalise_origin, origin_of
from studyshelf.delivery.links import get_policy, policy_origins
from studyshelf.lti.models import Registration
from studyshelf.partners import audit
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_url(value: str, *, what: str, allow_loopback_http: bool) -> str:
    """An absolute https URL (http only for loopback hosts when allowed), or Invalid saying which field."""
    url = value.strip()
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in {"https", "http"}:
        raise Invalid(f"{what}: {url!r} is not an absolute URL.")
    if parts.scheme == "http" and not (allow_loopback_http and parts.hostname in LOOPBACK):
        raise Invalid(f"{what}: {url!r} must use https://.")
    if parts.username or parts.password:
        raise Invalid(f"{what}: a URL cannot contain a user name or password.")
    return url


@dataclass(frozen=True)
class RegistrationSpec:
    issuer: str
    client_id: str
    auth_url: str
    jwks_url: str
    token_url: str = ""
    deployment_ids: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    name: str = ""
    product_family: str = ""


def _clean(spec: RegistrationSpec, *, allow_loopback_http: bool) -> RegistrationSpec:
    issuer = check_url(spec.issuer, what="Issuer", allow_loopback_http=allow_loopback_http).rstrip("/")
    if not spec.client_id.strip():
        raise Invalid("Client ID is required.")
    deployments = [d.strip() for d in spec.deployment_ids if d.strip()]
    origins = [normalise_origin(o) for o in spec.origins if o.strip()]
    own = origin_of(issuer)
    # The issuer is where a Moodle site lives; Canvas's shared issuer frames nothing (its customers'
    # hosts are learned from signed launches).
    if own is not None and urlsplit(issuer).hostname != "canvas.instructure.com" and own not in origins:
        origins.insert(0, own)
    return RegistrationSpec(
        issuer=issuer,
        client_id=spec.client_id.strip(),
        auth_url=check_url(spec.auth_url, what="OIDC auth URL", allow_loopback_http=allow_loopback_http),
        jwks_url=check_url(spec.jwks_url, what="Platform JWKS URL", allow_loopback_http=allow_loopback_http),
        token_url=check_url(spec.token_url, what="Access-token URL", allow_loopback_http=allow_loopback_http)
        if spec.token_url.strip()
        else "",
        deployment_ids=list(dict.fromkeys(deployments)),
        origins=list(dict.fromkeys(origins)),
        name=spec.name.strip()[:200],
        product_family=spec.product_family.strip()[:64],
    )


def create_registration(
    db: Session,
    *,
    principal: Principal | None,
    org_id: uuid.UUID,
    spec: RegistrationSpec,
    allow_loopback_http: bool,
    dynamic: bool = False,
) -> Registration:
    """Register a platform for an organisation (its admins; None = a dynamic registration already authorised)."""
    if principal is not None:
        require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    spec = _clean(spec, allow_loopback_http=allow_loopback_http)
    if find_registration(db, issuer=spec.issuer, client_id=spec.client_id) is not None:
        raise Conflict("A platform with this issuer and client ID is already registered.")
    registration = Registration(
        org_id=org_id,
        name=spec.name or (urlsplit(spec.issuer).hostname or spec.issuer),
        issuer=spec.issuer,
        client_id=spec.client_id,
        deployment_ids="\n".join(spec.deployment_ids),
        auth_url=spec.auth_url,
        token_url=spec.token_url,
        jwks_url=spec.jwks_url,
        origins="\n".join(spec.origins),
        product_family=spec.product_family,
        dynamic=dynamic,
    )
    db.add(registration)
    try:
        db.flush()
    except IntegrityError as exc:  # the same platform registered at the same moment elsewhere
        raise Conflict("A platform with this issuer and client ID is already registered.") from exc
    add_policy_origins(db, org_id=org_id, origins=spec.origins)
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="lti.registration.create",
        target_type="lti_registration",
        target_id=registration.id,
        target_label=registration.name,
        after={"issuer": spec.issuer, "client_id": spec.client_id, "deployments": spec.deployment_ids},
    )
    return registration


def add_policy_origins(db: Session, *, org_id: uuid.UUID, origins: list[str]) -> None:
    """Make LMS origins part of the organisation's default embed origins (kept, never removed here)."""
    policy = get_policy(db, org_id=org_id)
    current = policy_origins(policy)
    added = [o for o in origins if o not in current]
    if added:
        policy.default_origins = "\n".join([*current, *added][:20])
        db.flush()


def learn_origin(db: Session, *, registration: Registration, url: str | None) -> str | None:
    """The origin of a URL the platform signed (a return URL), remembered as one of its frame origins."""
    origin = origin_of(url) if url else None
    if origin is None:
        return None
    if origin not in registration.origin_list:
        registration.origins = "\n".join([*registration.origin_list, origin])
        add_policy_origins(db, org_id=registration.org_id, origins=[origin])
        db.flush()
    return origin


def find_registration(db: Session, *, issuer: str, client_id: str | None) -> Registration | None:
    """The registration for (issuer, client_id); without a client id, the issuer's only one."""
    issuer = issuer.rstrip("/")
    query = select(Registration).where(Registration.issuer == issuer)
    if client_id:
        return db.scalars(query.where(Registration.client_id == client_id)).first()
    found = list(db.scalars(query.limit(2)))
    return found[0] if len(found) == 1 else None


def list_registrations(db: Session, *, principal: Principal, org_id: uuid.UUID) -> list[Registration]:
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    query = select(Registration).where(Registration.org_id == org_id).order_by(Registration.created_at)
    return list(db.scalars(query))


def get_registration(db: Session, *, principal: Principal, registration_id: uuid.UUID) -> Registration:
    registration = db.get(Registration, registration_id)
    if registration is None:
        raise NotFound("No such LMS registration.")
    require(principal, Permission.MEMBERS_MANAGE, registration.org_id, what="LMS registration")
    return registration


def set_deployments(
    db: Session, *, principal: Principal, registration_id: uuid.UUID, deployment_ids: list[str]
) -> Registration:
    """Replace the deployment ids a registration accepts."""
    registration = get_registration(db, principal=principal, registration_id=registration_id)
    before = registration.deployments
    registration.deployment_ids = "\n".join(dict.fromkeys(d.strip() for d in deployment_ids if d.strip()))
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=registration.org_id,
        action="lti.registration.update",
        target_type="lti_registration",
        target_id=registration.id,
        before={"deployments": before},
        after={"deployments": registration.deployments},
    )
    return registration


def delete_registration(db: Session, *, principal: Principal, registration_id: uuid.UUID) -> None:
    """Disconnect a platform: its launches stop at once."""
    registration = get_registration(db, principal=principal, registration_id=registration_id)
    audit.record(
        db,
        principal=principal,
        org_id=registration.org_id,
        action="lti.registration.delete",
        target_type="lti_registration",
        target_id=registration.id,
        target_label=registration.name,
    )
    db.delete(registration)
    db.flush()
