"""HTML pages of the library: the folder browser, a file's page, the trash, sharing and 'Shared with us'."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import Invalid, NotFound, PermissionDenied
from studyshelf.library import access, files, folders, listing, sharing, trash
from studyshelf.library.api import _decode_cursor, _encode_cursor
from studyshelf.library.captions import list_captions
from studyshelf.library.models import File, Folder
from studyshelf.library.sniff import category
from studyshelf.partners import service as partners
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.grants import revoke_grant
from studyshelf.partners.models import GrantLevel, TargetType
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, allows
from studyshelf.partners.principal import Principal
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, translated

router = APIRouter(include_in_schema=False)
Kind = Annotated[Literal["folder", "file"], Form()]
ShareKind = Literal["folder", "file"]
ItemId = Annotated[uuid.UUID, Form()]
SortKey = Literal["name", "size", "updated_at"]
Order = Literal["asc", "desc"]
PAGE_SIZE = 50


def _listing(
    db: DbSession,
    principal: Principal,
    folder_id: uuid.UUID,
    *,
    sort: SortKey,
    order: Order,
    cursor: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Everything the folder page and its fragments show."""
    folder = folders.get_folder(db, principal=principal, folder_id=folder_id, now=now)
    entries, next_cursor = listing.list_children(
        db,
        principal=principal,
        folder_id=folder.id,
        sort=sort,
        descending=order == "desc",
        after=_decode_cursor(cursor, sort),
        limit=PAGE_SIZE,
        now=now,
    )
    return {
        "folder": folder,
        "path": access.visible_path(db, viewer=principal, folder=folder, now=now),
        "entries": [(entry, category(entry.content_type) if entry.content_type else "folder") for entry in entries],
        "thumbnailed": listing.thumbnailed(db, entries),
        "next_cursor": _encode_cursor(next_cursor),
        "sort": sort,
        "order": order,
        "can_write": _may_change(db, principal, "folder", folder.id, folder.org_id, now=now),
        "can_move": allows(principal, Permission.LIBRARY_WRITE, folder.org_id),
        "can_share": allows(principal, Permission.LIBRARY_SHARE, folder.org_id),
        "nav": "library" if allows(principal, Permission.LIBRARY_READ, folder.org_id) else "shared",
    }


def _may_change(
    db: DbSession, principal: Principal, kind: str, item_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> bool:
    """Whether the principal may change content here: as a member of the owner, or through a `manage` grant."""
    if allows(principal, Permission.LIBRARY_WRITE, org_id):
        return True
    try:
        if kind == "folder":
            folders.get_folder(db, principal=principal, folder_id=item_id, permission=Permission.LIBRARY_WRITE, now=now)
        else:
            files.get_file(db, principal=principal, file_id=item_id, permission=Permission.LIBRARY_WRITE, now=now)
    except (NotFound, PermissionDenied):
        return False
    return True


def _changed(
    request: Request, db: DbSession, principal: Principal, folder_id: uuid.UUID, message: str, now: datetime
) -> Response:
    """After a change: the re-rendered listing for HTMX (with a toast), or back to the folder for a plain form."""
    if not is_htmx(request):
        return RedirectResponse(f"/library/{folder_id}", status_code=303)
    context = _listing(db, principal, folder_id, sort="name", order="asc", now=now)
    headers = {"HX-Trigger": json.dumps({"toast": {"message": message}})}
    return render(request, "library/folder.html", context, block="listing", headers=headers)


@router.get("/")
def home(request: Request, principal: PagePrincipal, db: DbSession) -> Response:
    org_id = current_org_id(principal)
    if org_id is None:
        detail = "Your account is not a member of any organisation yet. Ask an owner to invite you."
        return render(request, "error.html", {"status": 200, "title": "No library yet", "detail": detail})
    return RedirectResponse(f"/library/{folders.get_root_folder(db, org_id=org_id).id}", status_code=303)


@router.get("/library/{folder_id}", response_class=HTMLResponse)
def folder_page(
    request: Request,
    folder_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    now: Now,
    sort: SortKey = "name",
    order: Order = "asc",
    cursor: str | None = None,
) -> Response:
    context = _listing(db, principal, folder_id, sort=sort, order=order, cursor=cursor, now=now)
    if is_htmx(request):
        return render(request, "library/folder.html", context, block="more_rows" if cursor else "listing")
    if context["can_move"]:
        context["move_targets"] = folders.search_folders_for_move(
            db, principal=principal, org_id=context["folder"].org_id
        )
    return render(request, "library/folder.html", context)


@router.post("/library/{folder_id}/folders", response_class=HTMLResponse)
def new_folder(
    request: Request,
    folder_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    name: Annotated[str, Form()],
    now: Now,
) -> Response:
    created = folders.create_folder(db, principal=principal, parent_id=folder_id, name=name, now=now)
    return _changed(
        request,
        db,
        principal,
        folder_id,
        translated(request, N_("Created folder “%(name)s”."), name=created.name),
        now=now,
    )


@router.post("/library/{folder_id}/rename", response_class=HTMLResponse)
def rename_item(
    request: Request,
    folder_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    kind: Kind,
    item_id: ItemId,
    name: Annotated[str, Form()],
    now: Now,
) -> Response:
    if kind == "folder":
        item: Any = folders.rename_folder(db, principal=principal, folder_id=item_id, name=name, now=now)
    else:
        item = files.rename_file(db, principal=principal, file_id=item_id, name=name, now=now)
    return _changed(
        request, db, principal, folder_id, translated(request, N_("Renamed to “%(name)s”."), name=item.name), now=now
    )


@router.post("/library/{folder_id}/move", response_class=HTMLResponse)
def move_item(
    request: Request,
    folder_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    kind: Kind,
    item_id: ItemId,
    target_id: ItemId,
    now: Now,
) -> Response:
    if kind == "folder":
        item: Any = folders.move_folder(
            db, principal=principal, folder_id=item_id, target_id=target_id, on_conflict="rename", now=now
        )
    else:
        item = files.move_file(
            db, principal=principal, file_id=item_id, target_id=target_id, on_conflict="rename", now=now
        )
    return _changed(
        request, db, principal, folder_id, translated(request, N_("Moved “%(name)s”."), name=item.name), now=now
    )


@router.post("/library/{folder_id}/delete", response_class=HTMLResponse)
def delete_item(
    request: Request,
    folder_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    kind: Kind,
    item_id: ItemId,
    now: Now,
) -> Response:
    if kind == "folder":
        item: Any = folders.delete_folder(db, principal=principal, folder_id=item_id, now=now)
    else:
        item = files.delete_file(db, principal=principal, file_id=item_id, now=now)
    return _changed(
        request,
        db,
        principal,
        folder_id,
        translated(request, N_("Moved “%(name)s” to the trash."), name=item.name),
        now=now,
    )


@router.get("/files/{file_id}", response_class=HTMLResponse)
def file_page(request: Request, file_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    file = files.get_file(db, principal=principal, file_id=file_id, now=now)
    assert file.current_version is not None
    context = {
        "file": file,
        "version": file.current_version,
        "kind": category(file.current_version.content_type),
        "path": _file_path(db, principal, file, now=now),
        "versions": files.list_versions(db, principal=principal, file_id=file.id, now=now),
        "can_write": _may_change(db, principal, "file", file.id, file.org_id, now=now),
        "can_share": allows(principal, Permission.LIBRARY_SHARE, file.org_id),
        "nav": "library" if allows(principal, Permission.LIBRARY_READ, file.org_id) else "shared",
        "captions": list_captions(db, principal=principal, file_id=file.id, now=now),
    }
    return render(request, "library/file.html", context)


def _file_path(db: DbSession, principal: Principal, file: File, now: datetime) -> list[Folder]:
    """Breadcrumbs for a file: its folders as far as the principal may see them (none for a file shared alone)."""
    try:
        folder = folders.get_folder(db, principal=principal, folder_id=file.folder_id, now=now)
    except NotFound:
        return []
    return access.visible_path(db, viewer=principal, folder=folder, now=now)


def _trash(request: Request, db: DbSession, principal: Principal, services: ServicesDep, **extra: Any) -> Response:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound("You are not a member of any organisation.")
    days = services.settings.trash_retention_days
    items = trash.list_trash(db, principal=principal, org_id=org_id, retention_days=days)
    context = {
        "items": items,
        "retention_days": days,
        "can_write": allows(principal, Permission.LIBRARY_WRITE, org_id),
        **extra,
    }
    return render(request, "library/trash.html", context, block="trash" if is_htmx(request) else None)


@router.get("/trash", response_class=HTMLResponse)
def trash_page(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep) -> Response:
    return _trash(request, db, principal, services)


@router.post("/trash/restore", response_class=HTMLResponse)
def restore_item(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    kind: Kind,
    item_id: ItemId,
    now: Now,
) -> Response:
    item = trash.restore(db, principal=principal, kind=kind, item_id=item_id, on_conflict="rename", now=now)
    if not is_htmx(request):
        return RedirectResponse("/trash", status_code=303)
    folder_id = item.parent_id if isinstance(item, Folder) else item.folder_id
    return _trash(request, db, principal, services, restored=item, restored_to=folder_id)


# --- Sharing with partners, and what partners shared with us -------------------------------------------------


def _share_panel(
    request: Request,
    db: DbSession,
    principal: Principal,
    kind: ShareKind,
    item_id: uuid.UUID,
    now: datetime,
    message: str = "",
) -> Response:
    """The share dialog's contents (an HTMX block, with a toast after a change), or a page without JavaScript."""
    target_type = TargetType(kind)
    grants = sharing.grants_on_item(db, principal=principal, target_type=target_type, target_id=item_id, now=now)
    item: Folder | File = (
        folders.get_folder(db, principal=principal, folder_id=item_id, now=now)
        if kind == "folder"
        else files.get_file(db, principal=principal, file_id=item_id, now=now)
    )
    orgs = [o for o in partners.list_organizations(db, principal=principal) if o.id != item.org_id]
    names = {o.id: o.name for o in orgs}
    context = {
        "kind": kind,
        "item": item,
        "grants": [
            (g, names.get(g.grantee_org_id) or partners.get_organization(db, g.grantee_org_id).name) for g in grants
        ],
        "orgs": orgs,
        "today": now.date().isoformat(),
    }
    if not is_htmx(request):
        return render(request, "library/share.html", context)
    headers = {"HX-Trigger": json.dumps({"toast": {"message": message}})} if message else None
    return render(request, "library/share.html", context, block="share", headers=headers)


def _shared(
    request: Request,
    kind: ShareKind,
    item_id: uuid.UUID,
    message: str,
    *,
    db: DbSession,
    principal: Principal,
    now: datetime,
) -> Response:
    if not is_htmx(request):
        return RedirectResponse(f"/share/{kind}/{item_id}", status_code=303)
    return _share_panel(request, db, principal, kind, item_id, now, message)


@router.get("/share/{kind}/{item_id}", response_class=HTMLResponse)
def share_panel(
    request: Request, kind: ShareKind, item_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    return _share_panel(request, db, principal, kind, item_id, now)


@router.post("/share/{kind}/{item_id}", response_class=HTMLResponse)
def share_item(
    request: Request,
    kind: ShareKind,
    item_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    grantee_org_id: ItemId,
    level: Annotated[GrantLevel, Form()],
    now: Now,
    expires_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        last_day = date.fromisoformat(expires_on) if expires_on else None
    except ValueError as exc:
        raise Invalid("The expiry is not a date.") from exc
    expires_at = datetime.combine(last_day, time(23, 59, 59), UTC) if last_day else None
    sharing.share(
        db,
        principal=principal,
        target_type=TargetType(kind),
        target_id=item_id,
        grantee_org_id=grantee_org_id,
        level=level,
        expires_at=expires_at,
        now=now,
    )
    grantee = partners.get_organization(db, grantee_org_id).name
    return _shared(
        request,
        kind,
        item_id,
        translated(
            request,
            N_("Shared with %(org)s (view).") if level is GrantLevel.VIEW else N_("Shared with %(org)s (manage)."),
            org=grantee,
        ),
        db=db,
        principal=principal,
        now=now,
    )


@router.post("/share/{kind}/{item_id}/revoke", response_class=HTMLResponse)
def revoke_share(
    request: Request,
    kind: ShareKind,
    item_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    grant_id: ItemId,
    now: Now,
) -> Response:
    grant = revoke_grant(db, principal=principal, grant_id=grant_id, now=now)
    grantee = partners.get_organization(db, grant.grantee_org_id).name
    return _shared(
        request,
        kind,
        item_id,
        translated(request, N_("%(org)s no longer has access."), org=grantee),
        db=db,
        principal=principal,
        now=now,
    )


@router.get("/shared", response_class=HTMLResponse)
def shared_with_us(request: Request, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound("You are not a member of any organisation.")
    items = sharing.shared_with(db, principal=principal, org_id=org_id, now=now)
    return render(request, "library/shared.html", {"items": items})
