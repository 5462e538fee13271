"""Share links: create, list, edit, revoke; open one for a visitor, counting views and watching its spread."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import iptocc
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.core import outbound
from studyshelf.core.clock import utcnow
from studyshelf.core.db import affected_rows
from studyshelf.core.errors import Invalid, NotFound, PermissionDenied
from studyshelf.core.redact import mask_url, unless_masked
from studyshelf.delivery.embed import embed_refusal, is_link_previewer, normalise_origins
from studyshelf.delivery.models import Link, LinkMode, LinkPolicy, Refusal, Sighting
from studyshelf.library.access import content_path_ids
from studyshelf.library.files import get_file
from studyshelf.library.folders import get_folder
from studyshelf.library.models import File, Folder
from studyshelf.notify import service as notify
from studyshelf.partners import audit
from studyshelf.partners.grants import org_has_access
from studyshelf.partners.models import User
from studyshelf.partners.permissions import Permission, acting_org_ids, allows, require
from studyshelf.partners.principal import Principal
from studyshelf.services import Services

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
        raise Invalid("The default lifetime cannot be longer than the maximum.")
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


def _load_target(db: Session, *, principal: Principal, target_type: str, target_id: uuid.UUID) -> File | Folder:
    if target_type == "file":
        return get_file(db, principal=principal, file_id=target_id)
    if target_type == "folder":
        return get_folder(db, principal=principal, folder_id=target_id)
    raise Invalid("target_type is file or folder.")


def _expiry(policy: LinkPolicy, expires_at: datetime | None) -> datetime:
    now = utcnow()
    if expires_at is None:
        return now + timedelta(days=policy.default_ttl_days)
    if expires_at.tzinfo is None:
        raise Invalid("expires_at needs a time zone (e.g. 2027-01-31T23:59:00Z).")
    if expires_at <= now:
        raise Invalid("The expiry must be in the future.")
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


def create_link(db: Session, *, principal: Principal, spec: LinkSpec) -> Link:
    """Create a link to a file or folder the principal may view, for an organisation where it may change content."""
    target = _load_target(db, principal=principal, target_type=spec.target_type, target_id=spec.target_id)
    org_id = _acting_org(principal, spec.org_id)
    require(principal, Permission.LIBRARY_WRITE, org_id, what="organisation's links")
    found = content_path_ids(db, target_type=spec.target_type, target_id=spec.target_id)
    assert found is not None
    if not org_has_access(db, org_id=org_id, owner_org_id=target.org_id, path_ids=found[1]):
        raise NotFound(f"No such {spec.target_type} for that organisation.")
    policy = get_policy(db, org_id=org_id)
    origins = normalise_origins(spec.allowed_origins if spec.allowed_origins is not None else policy_origins(policy))
    if spec.mode is LinkMode.EMBED and not origins:
        raise Invalid("An embed link needs at least one allowed origin (your LMS, e.g. https://moodle.example.edu).")
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
        expires_at=_expiry(policy, spec.expires_at),
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


def update_link(db: Session, *, principal: Principal, link_id: str, changes: dict[str, object]) -> Link:
    """Extend, change origins, limits or label (editors of the link's organisation)."""
    link = get_changeable_link(db, principal=principal, link_id=link_id)
    before = {k: getattr(link, k) for k in changes if k != "allowed_origins"}
    if "expires_at" in changes:
        value = changes["expires_at"]
        link.expires_at = _expiry(get_policy(db, org_id=link.org_id), value if isinstance(value, datetime) else None)
    if "allowed_origins" in changes:
        link.allowed_origins = "\n".join(normalise_origins(list(changes["allowed_origins"])))  # type: ignore[call-overload]  # validated by the schema as a list of str
    for key in ("label", "max_views", "allow_download", "mode"):
        if key in changes:
            setattr(link, key, changes[key])
    if link.mode is LinkMode.EMBED and not link.origins:
        raise Invalid("An embed link needs at least one allowed origin.")
    link.updated_at = utcnow()
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


def revoke_link(db: Session, *, principal: Principal, link_id: str) -> Link:
    """Stop a link now (editors of the link's organisation)."""
    link = get_changeable_link(db, principal=principal, link_id=link_id)
    if link.revoked_at is None:
        link.revoked_at = utcnow()
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


def network_of(ip: str, *, salt: str) -> str:
    """A pseudonymous network id: the /24 (IPv4) or /48 (IPv6) prefix, hashed with a secret salt."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return hashlib.sha256(f"{salt}|{network}".encode()).hexdigest()[:32]


def country_of(ip: str) -> str:
    try:
        return str(iptocc.country_code(ip) or "")[:2]
    except (ValueError, TypeError):
        return ""


@dataclass(frozen=True)
class Visitor:
    ip: str
    salt: str
    origin: str = ""


def record_refusal(db: Session, *, link_id: str | None, reason: str, visitor: Visitor) -> None:
    """Keep a `blocked` event (expired, revoked, origin, top-level, over-limit, bad-signature, grant-revoked …)."""
    db.add(
        Refusal(
            link_id=link_id if link_id and is_link_id(link_id) else None,
            reason=reason,
            origin=visitor.origin[:300],
            network=network_of(visitor.ip, salt=visitor.salt),
            country=country_of(visitor.ip),
        )
    )
    db.flush()


def link_state(db: Session, link: Link) -> str | None:
    """Why a link cannot be used now, or None: revoked, suspended, expired, deleted, grant-revoked."""
    if link.revoked_at is not None:
        return "revoked"
    if link.suspended_at is not None:
        return "suspended"
    if link.expires_at <= utcnow():
        return "expired"
    found = content_path_ids(db, target_type=link.target_type, target_id=link.target_id)
    if found is None:
        return "deleted"
    if not org_has_access(db, org_id=link.org_id, owner_org_id=link.owner_org_id, path_ids=found[1]):
        return "grant-revoked"
    return None


def consume_view(db: Session, *, link: Link) -> bool:
    """Count one view; False when the link's view limit is used up (atomic across instances)."""
    query = update(Link).where(Link.id == link.id)
    if link.max_views is not None:
        query = query.where(Link.view_count < link.max_views)
    counted = affected_rows(db.execute(query.values(view_count=Link.view_count + 1)))
    return bool(counted)


def record_sighting(db: Session, *, link: Link, visitor: Visitor) -> str | None:
    """Note where a link was used this hour; suspend it when its spread passes the policy. Returns why, if so.

    Only a network not yet seen this hour can raise the counts, so only then are they checked.
    """
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = affected_rows(
        db.execute(
            insert(Sighting)
            .values(
                id=uuid.uuid4(),
                link_id=link.id,
                hour=hour,
                network=network_of(visitor.ip, salt=visitor.salt),
                country=country_of(visitor.ip),
            )
            .on_conflict_do_nothing()
        )
    )
    return check_spread(db, link=link, hour=hour) if added else None


def check_spread(db: Session, *, link: Link, hour: datetime | None = None) -> str | None:
    """Suspend the link when this hour's networks, countries or refusals exceed the organisation's thresholds."""
    hour = hour or utcnow().replace(minute=0, second=0, microsecond=0)
    policy = get_policy(db, org_id=link.org_id)
    seen = select(func.count(func.distinct(Sighting.network)), func.count(func.distinct(Sighting.country))).where(
        Sighting.link_id == link.id, Sighting.hour == hour
    )
    networks, countries = db.execute(seen).one()
    refusals = (
        db.scalar(
            select(func.count())
            .select_from(Refusal)
            .where(Refusal.link_id == link.id, Refusal.at >= hour, Refusal.reason.in_(("origin", "top-level")))
        )
        or 0
    )
    reason = None
    if networks > policy.max_networks_per_hour:
        reason = f"used from {networks} networks within an hour (limit {policy.max_networks_per_hour})"
    elif countries > policy.max_countries_per_hour:
        reason = f"used from {countries} countries within an hour (limit {policy.max_countries_per_hour})"
    elif refusals > policy.max_refusals_per_hour:
        reason = f"{refusals} refused attempts from unknown sites within an hour (limit {policy.max_refusals_per_hour})"
    if reason is not None and link.suspended_at is None:
        link.suspended_at = utcnow()
        link.suspended_reason = reason
        db.flush()
        audit.record(
            db,
            principal=None,
            org_id=link.org_id,
            action="link.suspend",
            target_type="link",
            target_id=link.id,
            target_label=link.label,
            after={"reason": reason},
        )
        return reason
    return None


@dataclass(frozen=True)
class VisitFacts:
    """What a request to a link tells us about where it comes from."""

    visitor: Visitor
    own_origin: str
    sec_fetch_dest: str | None = None
    sec_fetch_site: str | None = None
    referer: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Admission:
    link: Link | None
    refusal: str | None = None  # the `blocked` reason, when refused
    preview_only: bool = False  # a link previewer or crawler: show a card, count nothing
    suspended_now: str | None = None  # this visit pushed the link over a spread threshold


def admit_visit(db: Session, *, link_id: str, facts: VisitFacts, count_view: bool = True) -> Admission:
    """Decide whether a visit to a link may see the material; refusals are recorded, never raised,
    so they are kept when the caller commits. NotFound for ids that name no link."""
    link = db.get(Link, link_id) if is_link_id(link_id) else None
    if link is None:
        raise NotFound("This link does not exist. Check that it was copied completely.")

    def refuse(reason: str) -> Admission:
        record_refusal(db, link_id=link.id, reason=reason, visitor=facts.visitor)
        suspended = check_spread(db, link=link) if reason in {"origin", "top-level"} else None
        return Admission(link, refusal=reason, suspended_now=suspended)

    state = link_state(db, link)
    if state is not None:
        return refuse(state)
    embed = embed_refusal(
        embed_only=link.mode is LinkMode.EMBED,
        allowed=link.origins,
        own_origin=facts.own_origin,
        sec_fetch_dest=facts.sec_fetch_dest,
        sec_fetch_site=facts.sec_fetch_site,
        referer=facts.referer,
    )
    if embed is not None:
        return refuse(embed)
    if is_link_previewer(facts.user_agent):
        return Admission(link, preview_only=True)
    if count_view and not consume_view(db, link=link):
        return refuse("over-limit")
    suspended = record_sighting(db, link=link, visitor=facts.visitor)
    if suspended is not None:
        record_refusal(db, link_id=link.id, reason="suspended", visitor=facts.visitor)
        return Admission(link, refusal="suspended", suspended_now=suspended)
    return Admission(link)


def notify_suspension(services: Services, db: Session, *, link: Link, reason: str) -> None:
    """Queue the notices of a suspension: an e-mail to the link's creator, a webhook call for the organisation.

    They join the caller's transaction and leave after its commit (notify.drain), never inside it."""
    creator = db.get(User, link.created_by) if link.created_by else None
    text = (
        f"StudyShelf paused the link {link.label or link.id} because it was {reason}.\n"
        "This usually means the link was shared outside the course. Review it in StudyShelf and re-enable it "
        "if the use is legitimate.\n"
    )
    if creator is not None and services.mailer.enabled:
        notify.enqueue_email(
            db, to=creator.email, subject="A StudyShelf link was paused", text=text, event="link.suspended"
        )
    url = get_policy(db, org_id=link.org_id).notify_webhook_url
    if url:
        payload = {"event": "link.suspended", "link_id": link.id, "label": link.label, "reason": reason}
        notify.enqueue_webhook(db, url=url, payload=dict(payload), event="link.suspended")


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
