"""HTML pages for share links: the 'Get link' dialog, the organisation's links, and the link policy settings."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import Invalid, NotFound, PermissionDenied
from studyshelf.delivery import links
from studyshelf.delivery.links import link_status
from studyshelf.delivery.links_api import embed_html, link_url
from studyshelf.delivery.models import Link, LinkMode, LinkPolicy
from studyshelf.library.files import get_file
from studyshelf.library.folders import get_folder
from studyshelf.library.models import File, Folder
from studyshelf.library.sniff import category
from studyshelf.partners.deps import DbSession, Now, ServicesDep, services_of
from studyshelf.partners.pages import PagePrincipal, _org_settings, current_org_id, safe_next
from studyshelf.partners.permissions import Permission, allows
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, translated

router = APIRouter(include_in_schema=False)
ItemKind = Literal["file", "folder"]
Status = Literal["active", "expired", "revoked", "suspended"]
STATUSES: tuple[Status, ...] = ("active", "suspended", "expired", "revoked")
FormStr = Annotated[str, Form()]
Days = Annotated[int, Form(ge=1, le=3650)]
Threshold = Annotated[int, Form(ge=1, le=100_000)]


@dataclass(frozen=True)
class LinkRow:
    """A link as a row shows it: its address, state, snippet, what it points at and what the viewer may do."""

    link: Link
    url: str
    status: Status
    snippet: str
    target_name: str
    target_href: str | None
    can_change: bool = False
    can_reactivate: bool = False


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _acting_org(principal: Principal) -> uuid.UUID:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound("You are not a member of any organisation.")
    return org_id


def _target(db: DbSession, principal: Principal, kind: str, item_id: uuid.UUID, now: datetime) -> File | Folder:
    if kind == "folder":
        return get_folder(db, principal=principal, folder_id=item_id, now=now)
    return get_file(db, principal=principal, file_id=item_id, now=now)


def _row(db: DbSession, services: Services, principal: Principal, link: Link, now: datetime) -> LinkRow:
    try:
        target: File | Folder | None = _target(db, principal, link.target_type, link.target_id, now=now)
    except (NotFound, PermissionDenied):  # in the trash, or no longer shared with us
        target = None
    content_type = links.target_content_type(db, link)
    url = link_url(services, link)
    title = link.label or (target.name if target else "")
    return LinkRow(
        link=link,
        url=url,
        status=link_status(link, now=now),
        snippet=embed_html(url, video=content_type is not None and category(content_type) == "video", title=title),
        target_name=target.name if target else "Deleted item",
        target_href=(f"/library/{target.id}" if link.target_type == "folder" else f"/files/{target.id}")
        if target
        else None,
        can_change=links.may_change(principal, link),
        can_reactivate=links.may_reactivate(principal, link),
    )


def _end_of_day(value: str, policy: LinkPolicy, now: datetime) -> datetime:
    """A date from a form as the end of that day (UTC), kept within the policy's maximum lifetime."""
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(N_("Choose an expiry date.")) from exc
    cap = now + timedelta(days=policy.max_ttl_days)
    return cap if day == cap.date() else datetime.combine(day, time(23, 59, 59), UTC)


def _toast(message: str) -> dict[str, str]:
    return {"HX-Trigger": json.dumps({"toast": {"message": message}})}


# --- The 'Get link' dialog of a file or folder -------------------------------------------------------------


def _panel(
    request: Request,
    db: DbSession,
    services: Services,
    principal: Principal,
    kind: ItemKind,
    item_id: uuid.UUID,
    *,
    status: int = 200,
    message: str = "",
    now: datetime,
    **extra: Any,
) -> Response:
    """The dialog's contents (an HTMX block), or a page of its own without JavaScript."""
    item = _target(db, principal, kind, item_id, now=now)
    org_id = _acting_org(principal)
    policy = links.get_link_policy_for(db, principal=principal, org_id=org_id)
    today = now.date()
    context = {
        "kind": kind,
        "item": item,
        "policy": policy,
        "rows": [
            _row(db, services, principal, link, now=now)
            for link in links.list_links(db, principal=principal, org_id=org_id, target_id=item.id)
        ],
        "form": {
            "label": "",
            "mode": "embed",
            "origins": "\n".join(links.policy_origins(policy)),
            "expires_on": (today + timedelta(days=policy.default_ttl_days)).isoformat(),
            "max_views": "",
            "allow_download": False,
        },
        "today": today.isoformat(),
        "max_day": (today + timedelta(days=policy.max_ttl_days)).isoformat(),
        "back": f"/get-link/{kind}/{item.id}",
        "can_create": allows(principal, Permission.LIBRARY_WRITE, org_id),
        **extra,
    }
    if not is_htmx(request):
        return render(request, "delivery/get_link.html", context, status=status)
    return render(
        request, "delivery/get_link.html", context, block="panel", headers=_toast(message) if message else None
    )


@router.get("/get-link/{kind}/{item_id}", response_class=HTMLResponse)
def link_panel(
    request: Request,
    kind: ItemKind,
    item_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> Response:
    return _panel(request, db, services, principal, kind, item_id, now=now)


@router.post("/get-link/{kind}/{item_id}", response_class=HTMLResponse)
def create_link(
    request: Request,
    kind: ItemKind,
    item_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    mode: Annotated[LinkMode, Form()],
    now: Now,
    expires_on: Annotated[str, Form(max_length=10)],
    label: Annotated[str, Form(max_length=200)] = "",
    allowed_origins: Annotated[str, Form(max_length=4000)] = "",
    max_views: Annotated[str, Form(max_length=9)] = "",
    allow_download: Annotated[bool, Form()] = False,
) -> Response:
    org_id = _acting_org(principal)
    form = {
        "label": label,
        "mode": mode.value,
        "origins": allowed_origins,
        "expires_on": expires_on,
        "max_views": max_views,
        "allow_download": allow_download,
    }
    try:
        if max_views.strip() and not max_views.strip().isdigit():
            raise Invalid(N_("The view limit is a whole number."))
        spec = links.LinkSpec(
            target_type=kind,
            target_id=item_id,
            mode=mode,
            expires_at=_end_of_day(expires_on, links.get_link_policy_for(db, principal=principal, org_id=org_id), now),
            allowed_origins=_lines(allowed_origins) if mode is LinkMode.EMBED else [],
            max_views=int(max_views) if max_views.strip() else None,
            allow_download=allow_download,
            label=label,
            org_id=org_id,
        )
        link = links.create_link(db, principal=principal, spec=spec, now=now)
    except Invalid as exc:
        db.rollback()
        status = 200 if is_htmx(request) else 422  # htmx swaps only successful answers
        return _panel(
            request, db, services, principal, kind, item_id, status=status, error=exc.detail, form=form, now=now
        )
    created = _row(db, services, principal, link, now=now)
    return _panel(
        request,
        db,
        services,
        principal,
        kind,
        item_id,
        message=translated(request, N_("Link created.")),
        created=created,
        now=now,
    )


# --- Actions on one link: a row comes back ------------------------------------------------------------------


def _changed(
    request: Request,
    db: DbSession,
    services: Services,
    principal: Principal,
    link: Link,
    message: str,
    back: str,
    now: datetime,
) -> Response:
    if not is_htmx(request):
        return RedirectResponse(safe_next(back), status_code=303)
    row = _row(db, services, principal, link, now=now)
    context = {"row": row, "show_target": back.startswith("/links"), "back": back}
    return render(request, "delivery/_link_row.html", context, headers=_toast(message))


@router.post("/links/{link_id}/revoke", response_class=HTMLResponse)
def revoke_link(
    request: Request,
    link_id: str,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    back: FormStr = "/links",
) -> Response:
    link = links.revoke_link(db, principal=principal, link_id=link_id, now=now)
    return _changed(
        request,
        db,
        services,
        principal,
        link,
        translated(request, N_("The link was revoked; it stops working now.")),
        back,
        now=now,
    )


@router.post("/links/{link_id}/reactivate", response_class=HTMLResponse)
def reactivate_link(
    request: Request,
    link_id: str,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    back: FormStr = "/links",
) -> Response:
    link = links.reactivate_link(db, principal=principal, link_id=link_id)
    return _changed(
        request, db, services, principal, link, translated(request, N_("The link works again.")), back, now=now
    )


@router.post("/links/{link_id}/edit", response_class=HTMLResponse)
def edit_link(
    request: Request,
    link_id: str,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    expires_on: Annotated[str, Form(max_length=10)],
    allowed_origins: Annotated[str, Form(max_length=4000)] = "",
    back: FormStr = "/links",
) -> Response:
    """Extend a link or change its origins; only what changed is sent to the service."""
    link = links.get_changeable_link(db, principal=principal, link_id=link_id)
    changes: dict[str, object] = {}
    if expires_on != link.expires_at.date().isoformat():
        changes["expires_at"] = _end_of_day(expires_on, links.get_policy(db, org_id=link.org_id), now)
    if _lines(allowed_origins) != link.origins:
        changes["allowed_origins"] = _lines(allowed_origins)
    if changes:
        link = links.update_link(db, principal=principal, link_id=link_id, changes=changes, now=now)
    return _changed(
        request,
        db,
        services,
        principal,
        link,
        translated(request, N_("Link updated.") if changes else N_("Nothing changed.")),
        back,
        now=now,
    )


# --- The organisation's links -------------------------------------------------------------------------------


@router.get("/links", response_class=HTMLResponse)
def links_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    status: Status | None = None,
) -> Response:
    org_id = _acting_org(principal)
    rows = [
        _row(db, services, principal, link, now=now)
        for link in links.list_links(db, principal=principal, org_id=org_id)
    ]
    counts = {name: sum(1 for row in rows if row.status == name) for name in STATUSES}
    context = {
        "rows": [row for row in rows if status is None or row.status == status],
        "total": len(rows),
        "counts": counts,
        "status": status,
        "statuses": STATUSES,
        "back": "/links" + (f"?status={status}" if status else ""),
        "nav": "links",
    }
    return render(request, "delivery/links.html", context)


# --- The link policy, a section of the organisation settings ------------------------------------------------


def _policy_section(
    request: Request, db: DbSession, principal: Principal, *, status: int = 200, message: str = "", **extra: Any
) -> Response:
    """The organisation page's link policy block (HTMX), or the whole organisation page without JavaScript."""
    org_id = _acting_org(principal)
    policy = links.get_link_policy_for(db, principal=principal, org_id=org_id)
    context: dict[str, Any] = {
        "link_policy": policy,
        "policy_form": {
            "default_origins": "\n".join(links.policy_origins(policy)),
            "notify_webhook_url": links.shown_webhook(principal, policy),
        },
        "can_edit_policy": links.may_manage_policy(principal, org_id),
        **extra,
    }
    if is_htmx(request):
        headers = _toast(message) if message else None
        return render(request, "partners/organization.html", context, block="link_policy", headers=headers)
    now = services_of(request).clock.now()
    response = _org_settings(request, db, principal, now=now, block="link_policy", **context)
    response.status_code = status
    return response


@router.get("/settings/organization/link-policy", response_class=HTMLResponse)
def policy_section(request: Request, principal: PagePrincipal, db: DbSession) -> Response:
    return _policy_section(request, db, principal)


@router.post("/settings/organization/link-policy", response_class=HTMLResponse)
def update_policy(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    default_ttl_days: Days,
    max_ttl_days: Days,
    max_networks_per_hour: Threshold,
    max_countries_per_hour: Annotated[int, Form(ge=1, le=250)],
    max_refusals_per_hour: Threshold,
    default_origins: Annotated[str, Form(max_length=4000)] = "",
    notify_webhook_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    changes: dict[str, object] = {
        "default_ttl_days": default_ttl_days,
        "max_ttl_days": max_ttl_days,
        "default_origins": _lines(default_origins),
        "max_networks_per_hour": max_networks_per_hour,
        "max_countries_per_hour": max_countries_per_hour,
        "max_refusals_per_hour": max_refusals_per_hour,
        "notify_webhook_url": notify_webhook_url.strip(),
    }
    try:
        links.update_policy(db, principal=principal, org_id=_acting_org(principal), changes=dict(changes))
    except Invalid as exc:
        db.rollback()  # the service may have changed some fields before it found the problem
        submitted = {**changes, "default_origins": default_origins}
        status = 200 if is_htmx(request) else 422
        return _policy_section(
            request, db, principal, status=status, policy_error=exc.detail, policy_form=submitted, submitted=True
        )
    return _policy_section(request, db, principal, message=translated(request, N_("Link settings saved.")))
