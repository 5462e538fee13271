"""JSON routes for share links and the organisation's link policy."""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from studyshelf.delivery import links
from studyshelf.delivery.models import Link, LinkMode, LinkPolicy
from studyshelf.library.sniff import category
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.principal import Principal
from studyshelf.services import Services

router = APIRouter(prefix="/api/v1", tags=["links"])


class LinkCreate(BaseModel):
    target_type: Literal["file", "folder"]
    target_id: uuid.UUID
    expires_at: datetime | None = Field(
        default=None, description="Default and maximum come from the organisation's policy."
    )
    allowed_origins: list[str] | None = Field(
        default=None, max_length=20, description="LMS origins allowed to frame the link; default: the organisation's."
    )
    mode: LinkMode = LinkMode.EMBED
    max_views: int | None = Field(default=None, ge=1, le=10_000_000)
    allow_download: bool = False
    label: str = Field(default="", max_length=200)
    org_id: uuid.UUID | None = Field(default=None, description="The organisation the link belongs to (default: yours).")


class LinkUpdate(BaseModel):
    expires_at: datetime | None = None
    allowed_origins: list[str] | None = Field(default=None, max_length=20)
    mode: LinkMode | None = None
    max_views: int | None = Field(default=None, ge=1, le=10_000_000)
    allow_download: bool | None = None
    label: str | None = Field(default=None, max_length=200)


class LinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    embed_html: str
    org_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    label: str
    mode: LinkMode
    allowed_origins: list[str]
    expires_at: datetime
    max_views: int | None
    view_count: int
    allow_download: bool
    created_at: datetime
    revoked_at: datetime | None
    suspended_at: datetime | None
    suspended_reason: str
    status: Literal["active", "expired", "revoked", "suspended"]


class LinkPolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    default_ttl_days: int
    max_ttl_days: int
    default_origins: list[str]
    max_networks_per_hour: int
    max_countries_per_hour: int
    max_refusals_per_hour: int
    notify_webhook_url: str = Field(
        description="Whole for the organisation's admins; for others only scheme and host (https://hooks.example.com/…)."
    )


class LinkPolicyUpdate(BaseModel):
    default_ttl_days: int | None = Field(default=None, ge=1, le=3650)
    max_ttl_days: int | None = Field(default=None, ge=1, le=3650)
    default_origins: list[str] | None = Field(default=None, max_length=20)
    max_networks_per_hour: int | None = Field(default=None, ge=1, le=100_000)
    max_countries_per_hour: int | None = Field(default=None, ge=1, le=250)
    max_refusals_per_hour: int | None = Field(default=None, ge=1, le=100_000)
    notify_webhook_url: str | None = Field(default=None, max_length=500)


def link_url(services: Services, link: Link) -> str:
    return f"{services.settings.base_url.rstrip('/')}/v/{link.id}"


def embed_html(url: str, *, video: bool, title: str) -> str:
    """A copy-ready iframe: a responsive 16:9 box for video, a fixed height for documents."""
    safe_title = html.escape(title or "Study material", quote=True)
    allow = 'allow="fullscreen; picture-in-picture; encrypted-media" allowfullscreen'
    if video:
        return (
            '<div style="position:relative;padding-top:56.25%;height:0;overflow:hidden;">'
            f'<iframe src="{url}" title="{safe_title}" {allow} referrerpolicy="strict-origin-when-cross-origin" '
            'style="position:absolute;top:0;left:0;width:100%;height:100%;border:0;" loading="lazy"></iframe></div>'
        )
    return (
        f'<iframe src="{url}" title="{safe_title}" {allow} referrerpolicy="strict-origin-when-cross-origin" '
        'style="width:100%;height:720px;border:0;" loading="lazy"></iframe>'
    )


def link_read(services: Services, link: Link, *, video: bool, now: datetime) -> LinkRead:
    url = link_url(services, link)
    return LinkRead(
        id=link.id,
        url=url,
        embed_html=embed_html(url, video=video, title=link.label),
        org_id=link.org_id,
        target_type=link.target_type,
        target_id=link.target_id,
        label=link.label,
        mode=link.mode,
        allowed_origins=link.origins,
        expires_at=link.expires_at,
        max_views=link.max_views,
        view_count=link.view_count,
        allow_download=link.allow_download,
        created_at=link.created_at,
        revoked_at=link.revoked_at,
        suspended_at=link.suspended_at,
        suspended_reason=link.suspended_reason,
        status=links.link_status(link, now=now),
    )


def _is_video(db: DbSession, link: Link) -> bool:
    content_type = links.target_content_type(db, link)
    return content_type is not None and category(content_type) == "video"


@router.post("/links", response_model=LinkRead, status_code=status.HTTP_201_CREATED)
def create_link(
    body: LinkCreate, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now
) -> LinkRead:
    """Create a secured link to a file or folder, for embedding in an LMS or opening directly."""
    spec = links.LinkSpec(**body.model_dump())
    link = links.create_link(db, principal=principal, spec=spec, now=now)
    return link_read(services, link, video=_is_video(db, link), now=now)


@router.get("/links", response_model=list[LinkRead])
def list_links(
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    org_id: uuid.UUID,
    now: Now,
    target_id: uuid.UUID | None = None,
) -> list[LinkRead]:
    """An organisation's links, or only those to one file or folder."""
    found = links.list_links(db, principal=principal, org_id=org_id, target_id=target_id)
    return [link_read(services, link, video=_is_video(db, link), now=now) for link in found]


@router.get("/links/{link_id}", response_model=LinkRead)
def get_link(link_id: str, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now) -> LinkRead:
    link = links.get_link(db, principal=principal, link_id=link_id)
    return link_read(services, link, video=_is_video(db, link), now=now)


@router.patch("/links/{link_id}", response_model=LinkRead)
def update_link(
    link_id: str, body: LinkUpdate, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now
) -> LinkRead:
    """Extend a link, change its origins, limits or label (editors and admins of the link's organisation)."""
    link = links.update_link(
        db, principal=principal, link_id=link_id, changes=body.model_dump(exclude_unset=True), now=now
    )
    return link_read(services, link, video=_is_video(db, link), now=now)


@router.post("/links/{link_id}/revoke", response_model=LinkRead)
def revoke_link(link_id: str, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now) -> LinkRead:
    """Stop a link now; outstanding media URLs end within their few minutes of life (editors and admins)."""
    link = links.revoke_link(db, principal=principal, link_id=link_id, now=now)
    return link_read(services, link, video=_is_video(db, link), now=now)


@router.post("/links/{link_id}/reactivate", response_model=LinkRead)
def reactivate_link(
    link_id: str, principal: CurrentPrincipal, db: DbSession, services: ServicesDep, now: Now
) -> LinkRead:
    """Re-enable a link that was suspended for spreading too far (the organisation's admins)."""
    link = links.reactivate_link(db, principal=principal, link_id=link_id)
    return link_read(services, link, video=_is_video(db, link), now=now)


@router.get("/orgs/{org_id}/link-policy", response_model=LinkPolicyRead)
def get_link_policy(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> LinkPolicyRead:
    """The organisation's link policy."""
    return _policy_read(principal, links.get_link_policy_for(db, principal=principal, org_id=org_id))


@router.patch("/orgs/{org_id}/link-policy", response_model=LinkPolicyRead)
def update_link_policy(
    org_id: uuid.UUID, body: LinkPolicyUpdate, principal: CurrentPrincipal, db: DbSession
) -> LinkPolicyRead:
    """Link lifetimes, default LMS origins and the thresholds that suspend a link (admins)."""
    policy = links.update_policy(db, principal=principal, org_id=org_id, changes=body.model_dump(exclude_unset=True))
    return _policy_read(principal, policy)


def _policy_read(principal: Principal, policy: LinkPolicy) -> LinkPolicyRead:
    return LinkPolicyRead(
        default_ttl_days=policy.default_ttl_days,
        max_ttl_days=policy.max_ttl_days,
        default_origins=links.policy_origins(policy),
        max_networks_per_hour=policy.max_networks_per_hour,
        max_countries_per_hour=policy.max_countries_per_hour,
        max_refusals_per_hour=policy.max_refusals_per_hour,
        notify_webhook_url=links.shown_webhook(principal, policy),
    )
