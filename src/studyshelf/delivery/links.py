"""Share links: create, list, edit, revoke, reactivate, and each organisation's link policy.

Whether a visit may use a link is `admission`; where a link spreads, and its suspension, is `radar`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core import outbound
from studyshelf.core.errors import Invalid, NotFound, PermissionDenied
from studyshelf.core.redact import mask_url, unless_masked
from studyshelf.delivery.embed import normalise_origins
from studyshelf.delivery.models import Link, LinkMode, LinkPolicy
from studyshelf.library.access import content_path_ids
from studyshelf.library.files import get_file
from studyshelf.library.folders import get_folder
from studyshelf.library.models import File, Folder
from studyshelf.partners import audit
from studyshelf.partners.grants import org_has_access
from studyshelf.partners.permissions import Permission, acting_org_ids, allows, require
from studyshelf.partners.principal import Principal
from studyshelf.web.i18n import N_

LINK_ID_BYTES = 16  # 128 bits of randomness
LINK_ID_LENGTH = 22


def new_link_id() -> str:
    return secrets.token_urlsafe(LINK_ID_BYTES)


def is_link_id(value: str) -> bool:
    return len(value) == LINK_ID_LENGTH and all(c.isalnum() or c in "-_" for c in value)


def get_policy(db: Session, *, org_id: uuid.UUID) -> LinkPolicy:
    """The organisation's link policy (defaults until an admin changes it)."""
    policy = db.get(LinkPolicy, org_id)
    if policy is None:
        policy = LinkPolicy(org_id=org_id)
        db.add(policy)
        db.flush()
    return policy


def update_policy(db: Session, *, principal: Principal, org_id: uuid.UUID, changes: dict[str, object]) -> LinkPolicy:
    """Change the organisation's link policy (admins); a masked webhook sent back keeps the stored one."""
    require(principal, Permission.SETTINGS_MANAGE, org_id, what="organisation")
    policy = get_policy(db, org_id=org_id)
    if "notify_webhook_url" in changes:
        changes["notify_webhook_url"] = unless_masked(
            str(changes["notify_webhook_url"] or ""), policy.notify_webhook_url
        )
    before = {k: getattr(policy, k) for k in changes}
    if changes.get("notify_webhook_url"):
        try:
            changes["notify_webhook_url"] = outbound.check_url(str(changes["notify_webhook_url"]))
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    if "default_origins" in changes:
        changes["default_origins"] = "\n".join(normalise_origins(list(changes["default_origins"])))  # type: ignore[call-overload]  # validated by the schema as a list of str
    for key, value in changes.items():
        setattr(policy, key, value)
    if policy.default_ttl_days > policy.max_ttl_days:
        raise Invalid(N_("The default lifetime cannot be longer than the maximum."))
    db.flush()
    audit.record(db, principal=principal, org_id=org_id, action="link_policy.update", before=before, after=changes)
    return policy


def _acting_org(principal: Principal, org_id: uuid.UUID | None) -> uuid.UUID:
    orgs = acting_org_ids(principal)
    if org_id is None:
        if not orgs:
            raise Invalid("You belong to no organisation a link could belong to.")
        if principal.session is not None and principal.session.current_org_id in orgs:
            return principal.session.current_org_id
        return orgs[0]
    if org_id not in orgs:
        raise NotFound("No such organisation.")
    return org_id


def _load_target(
    db: Session, *, principal: Principal, target_type: str, target_id: uuid.UUID, now: datetime
) -> File | Folder:
    if target_type == "file":
        return get_file(db, principal=principal, file_id=target_id, now=now)
    if target_type == "folder":
        return get_folder(db, principal=principal, folder_id=target_id, now=now)
    raise Invalid("target_type is file or folder.")


def _expiry(policy: LinkPolicy, expires_at: datetime | None, now: datetime) -> datetime:
    if expires_at is None:
        return now + timedelta(days=policy.default_ttl_days)
    if expires_at.tzinfo is None:
        raise Invalid("expires_at needs a time zone (e.g. 2027-01-31T23:59:00Z).")
    if expires_at <= now:
        raise Invalid(N_("The expiry must be in the future."))
    if expires_at > now + timedelta(days=policy.max_ttl_days):
        raise Invalid(f"Links may live at most {policy.max_ttl_days} days in this organisation.")
    return expires_at


@dataclass(frozen=True)
class LinkSpec:
    target_type: str
    target_id: uuid.UUID
    mode: LinkMode
    expires_at: datetime | None = None
    allowed_origins: list[str] | None = None
    max_views: int | None = None
    allow_download: bool = False
    label: str = ""
    org_id: uuid.UUID | None = None


def create_link(db: Session, *, principal: Principal, spec: LinkSpec, now: datetime) -> Link:
    """Create a link to a file or folder the principal may view, for an organisation where it may change content."""
    target = _load_target(db, principal=principal, target_type=spec.target_type, target_id=spec.target_id, now=now)
    org_id = _acting_org(principal, spec.org_id)
    require(principal, Permission.LIBRARY_WRITE, org_id, what="organisation's links")
    found = content_path_ids(db, target_type=spec.target_type, target_id=spec.target_id)
    assert found is not None
    if not org_has_access(db, org_id=org_id, owner_org_id=target.org_id, path_ids=found[1], now=now):
        raise NotFound(f"No such {spec.target_type} for that organisation.")
    policy = get_policy(db, org_id=org_id)
    origins = normalise_origins(spec.allowed_origins if spec.allowed_origins is not None else policy_origins(policy))
    if spec.mode is LinkMode.EMBED and not origins:
        raise Invalid(
            N_("An embed link needs at least one allowed origin (your LMS, e.g. https://moodle.example.edu).")
        )
    if spec.max_views is not None and not 1 <= spec.max_views <= 10_000_000:
        raise Invalid("max_views is between 1 and 10,000,000.")
    link = Link(
        id=new_link_id(),
        org_id=org_id,
        owner_org_id=target.org_id,
        target_type=spec.target_type,
        target_id=spec.target_id,
        label=spec.label.strip()[:200],
        mode=spec.mode,
        allowed_origins="\n".join(origins),
        expires_at=_expiry(policy, spec.expires_at, now),
        max_views=spec.max_views,
        allow_download=spec.allow_download,
        created_by=principal.user.id,
    )
    db.add(link)
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action="link.create",
        target_type=spec.target_type,
        target_id=spec.target_id,
        target_label=target.name,
        after={"link": link.id, "mode": link.mode.value, "origins": origins, "expires_at": link.expires_at},
    )
    return link


def policy_origins(policy: LinkPolicy) -> list[str]:
    return [o for o in policy.default_origins.split("\n") if o]


def get_link(db: Session, *, principal: Principal, link_id: str) -> Link:
    """A link of one of the principal's organisations (NotFound otherwise)."""
    link = db.get(Link, link_id) if is_link_id(link_id) else None
    if link is None or not allows(principal, Permission.LIBRARY_READ, link.org_id):
        raise NotFound("No such link.")
    return link


def list_links(
    db: Session, *, principal: Principal, org_id: uuid.UUID, target_id: uuid.UUID | None = None
) -> list[Link]:
    """Links of an organisation, optionally only those to one file or folder, newest first."""
    require(principal, Permission.LIBRARY_READ, org_id, what="organisation")
    query = select(Link).where(Link.org_id == org_id)
    if target_id is not None:
        query = query.where(Link.target_id == target_id)
    return list(db.scalars(query.order_by(Link.created_at.desc())))


def may_change(principal: Principal, link: Link) -> bool:
    return allows(principal, Permission.LIBRARY_WRITE, link.org_id)


def may_reactivate(principal: Principal, link: Link) -> bool:
    return allows(principal, Permission.LINK_REACTIVATE, link.org_id)


def get_changeable_link(db: Session, *, principal: Principal, link_id: str) -> Link:
    """A link the principal may change: `library:write` on the link's organisation (PermissionDenied otherwise)."""
    link = get_link(db, principal=principal, link_id=link_id)
    require(principal, Permission.LIBRARY_WRITE, link.org_id, what="link")
    return link


def update_link(db: Session, *, principal: Principal, link_id: str, changes: dict[str, object], now: datetime) -> Link:
    """Extend, change origins, limits or label (editors of the link's organisation)."""
    link = get_changeable_link(db, principal=principal, link_id=link_id)
    before = {k: getattr(link, k) for k in changes if k != "allowed_origins"}
    if "expires_at" in changes:
        value = changes["expires_at"]
        link.expires_at = _expiry(
            get_policy(db, org_id=link.org_id), value if isinstance(value, datetime) else None, now
        )
    if "allowed_origins" in changes:
        link.allowed_origins = "\n".join(normalise_origins(list(changes["allowed_origins"])))  # type: ignore[call-overload]  # validated by the schema as a list of str
    for key in ("label", "max_views", "allow_download", "mode"):
        if key in changes:
            setattr(link, key, changes[key])
    if link.mode is LinkMode.EMBED and not link.origins:
        raise Invalid("An embed link needs at least one allowed origin.")
    link.updated_at = now
    db.flush()
    audit.record(
        db,
        principal=principal,
        org_id=link.org_id,
        action="link.update",
        target_type="link",
        target_id=link.id,
        target_label=link.label,
        before=before,
        after=dict(changes),
    )
    return link


def revoke_link(db: Session, *, principal: Principal, link_id: str, now: datetime) -> Link:
    """Stop a link now (editors of the link's organisation)."""
    link = get_changeable_link(db, principal=principal, link_id=link_id)
    if link.revoked_at is None:
        link.revoked_at = now
        db.flush()
        audit.record(
            db, principal=principal, org_id=link.org_id, action="link.revoke", target_type="link", target_id=link.id
        )
    return link


def reactivate_link(db: Session, *, principal: Principal, link_id: str) -> Link:
    """Lift the leak radar's suspension (organisation admins: the link was seen spreading)."""
    link = get_changeable_link(db, principal=principal, link_id=link_id)
    if link.suspended_at is not None:
        if not may_reactivate(principal, link):
            raise PermissionDenied("Only an admin of the organisation can re-enable a link that was paused.")
        before = {"suspended_reason": link.suspended_reason}
        link.suspended_at = None
        link.suspended_reason = ""
        db.flush()
        audit.record(
            db,
            principal=principal,
            org_id=link.org_id,
            action="link.reactivate",
            target_type="link",
            target_id=link.id,
            before=before,
        )
    return link


def target_content_type(db: Session, link: Link) -> str | None:
    """The current content type of a file link's target (None for folders or gone files)."""
    if link.target_type != "file":
        return None
    file = db.get(File, link.target_id)
    return file.current_version.content_type if file is not None and file.current_version is not None else None


def get_link_policy_for(db: Session, *, principal: Principal, org_id: uuid.UUID) -> LinkPolicy:
    require(principal, Permission.LIBRARY_READ, org_id, what="organisation")
    return get_policy(db, org_id=org_id)


def may_manage_policy(principal: Principal, org_id: uuid.UUID) -> bool:
    return allows(principal, Permission.SETTINGS_MANAGE, org_id)


def shown_webhook(principal: Principal, policy: LinkPolicy) -> str:
    """The suspension webhook as the principal may see it: whole for the organisation's admins, else masked."""
    url = policy.notify_webhook_url
    return url if may_manage_policy(principal, policy.org_id) else mask_url(url)


def link_status(link: Link, now: datetime) -> Literal["active", "expired", "revoked", "suspended"]:
    """What a link is by its own columns alone (admission adds a deleted target and a revoked grant)."""
    if link.revoked_at is not None:
        return "revoked"
    if link.suspended_at is not None:
        return "suspended"
    if link.expires_at <= now:
        return "expired"
    return "active"
