"""The viewer behind a share link: `/v/{link_id}`, and the renewal of its short-lived media URLs."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import NotFound, PermissionDenied
from studyshelf.delivery import hits, links
from studyshelf.delivery.embed import frame_ancestors, origin_of
from studyshelf.delivery.models import Link
from studyshelf.delivery.signing import MediaClaims
from studyshelf.events.beacon import BeaconClaims, sign_beacon
from studyshelf.library import service as library
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.library.sniff import category
from studyshelf.notify import service as notify
from studyshelf.partners.deps import ClientIp, ServicesDep
from studyshelf.services import Services
from studyshelf.web.assets import script_src
from studyshelf.web.render import render
from studyshelf.web.security import client_ip

router = APIRouter(include_in_schema=False)

VIEWER_TOKEN_SECONDS = 6 * 3600
_HEADLINES = {
    "expired": ("This link has expired", "Ask your teacher for a new link to this material."),
    "revoked": ("This link was withdrawn", "The material is no longer shared through this link."),
    "suspended": ("This link is paused", "It was used in more places than one course would; its owner has been told."),
    "deleted": ("This material was removed", "It is no longer in the library."),
    "grant-revoked": ("This material is no longer shared", "Your institution's access to it has ended."),
    "over-limit": ("This link has been used up", "It allowed a limited number of views, and they are all used."),
    "top-level": ("This material is available inside your course", "Open it from your course page in the LMS."),
    "origin": ("This material is available inside your course", "It cannot be shown on this website."),
}


def viewer_csp(link: Link) -> str:
    return (
        f"default-src 'self'; {script_src()}; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; {frame_ancestors(link.origins)}"
    )


def _headers(link: Link) -> dict[str, str]:
    # frame-ancestors replaces X-Frame-Options; sending both would let old browsers block the LMS.
    return {"content-security-policy": viewer_csp(link), "cache-control": "private, no-store"}


def _own_origin(request: Request) -> str:
    return origin_of(str(request.url)) or ""


def _facts(request: Request, services: Services, client: str) -> links.VisitFacts:
    h = request.headers
    origin = h.get("origin") or h.get("referer") or ""
    return links.VisitFacts(
        visitor=links.Visitor(ip=client, salt=services.settings.secret_key, origin=origin),
        own_origin=_own_origin(request),
        sec_fetch_dest=h.get("sec-fetch-dest"),
        sec_fetch_site=h.get("sec-fetch-site"),
        referer=h.get("referer"),
        user_agent=h.get("user-agent"),
    )


def viewer_token(secret: str, link_id: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"viewer|{link_id}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{expires}.{mac}"


def check_viewer_token(secret: str, link_id: str, token: str, now: float) -> bool:
    expires_text, _, _mac = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < now:
        return False
    return hmac.compare_digest(viewer_token(secret, link_id, int(expires_text)), token)


def blocked_page(request: Request, reason: str, *, status: int = 403, link: Link | None = None) -> HTMLResponse:
    """The friendly refusal; with the link's frame-ancestors, so a learner sees it inside the course page."""
    headline, message = _HEADLINES.get(reason, _HEADLINES["revoked"])
    context = {"headline": headline, "message": message, "title": headline}
    headers = _headers(link) if link is not None else None
    response = render(request, "delivery/blocked.html", context, status=status, headers=headers)
    response.headers["cache-control"] = "no-store"
    return response


@dataclass(frozen=True)
class Crumb:
    name: str
    url: str


def _item_in_link(db: Session, link: Link, kind: str, item_id: uuid.UUID) -> File | Folder:
    """A live file or folder inside what the link shares, or NotFound."""
    found = library.content_path_ids(db, target_type=kind, target_id=item_id)
    if found is None or link.target_id not in found[1]:
        raise NotFound("That item is not part of this link.")
    item = db.get(File, item_id) if kind == "file" else db.get(Folder, item_id)
    assert item is not None
    return item


def _crumbs(db: Session, link: Link, folder_id: uuid.UUID) -> list[Crumb]:
    if link.target_type != "folder":
        return []
    path = library.folder_path(db, folder_id)
    start = next(i for i, f in enumerate(path) if f.id == link.target_id)
    return [
        Crumb(f.name, f"/v/{link.id}" if f.id == link.target_id else f"/v/{link.id}?folder={f.id}")
        for f in path[start:]
    ]


def media_urls(services: Services, link: Link, file: File, version: FileVersion) -> dict[str, Any]:
    """Fresh signed URLs for a version's bytes (and a download URL when the link allows it)."""
    ttl = services.settings.media_url_ttl_seconds
    expires = int(time.time()) + ttl

    def sign(download: bool) -> str:
        claims = MediaClaims(
            expires=expires,
            link_id=link.id,
            version_id=str(version.id),
            sha256=version.blob_sha256,
            size=version.size,
            modified=int(version.created_at.timestamp()),
            content_type=version.content_type,
            download=download,
            filename=file.name,
        )
        return services.signer.sign(claims)

    return {
        "url": sign(False),
        "download_url": sign(True) if link.allow_download else None,
        "expires_at": expires,
        "refresh_after": max(30, ttl - 90),
    }


def _render_file(request: Request, services: Services, link: Link, db: Session, file: File) -> HTMLResponse:
    version = file.current_version
    assert version is not None
    urls = media_urls(services, link, file, version)
    now = int(time.time())
    expires = now + VIEWER_TOKEN_SECONDS
    folders = hits.folder_path(db, file)
    session = hits.new_session()
    view = hits.file_hit(
        request, services, type_="view", link=link, file=file, version=version, folders=folders, session=session
    )
    hits.record(services, view)
    beacon = BeaconClaims(
        link_id=link.id,
        file_id=str(file.id),
        version_id=str(version.id),
        owner_org_id=str(link.owner_org_id),
        partner_org_id=str(link.org_id),
        folder_path=folders,
        content_type=version.content_type,
        filename=file.name,
        session=session,
        size=version.size,
        issued=now,
        expires=expires,
        referer=origin_of(view.referer) or "",
    )
    context = {
        "title": file.name,
        "kind": category(version.content_type),
        "content_type": version.content_type,
        "size": version.size,
        "media_url": urls["url"],
        "download_url": urls["download_url"],
        "refresh_after": urls["refresh_after"],
        "renew_url": f"/v/{link.id}/media",
        "viewer_token": viewer_token(services.settings.secret_key, link.id, expires),
        "beacon_token": sign_beacon(services.settings.secret_key, beacon),
        "file_id": file.id,
        "crumbs": _crumbs(db, link, file.folder_id),
    }
    return render(request, "delivery/viewer.html", context, headers=_headers(link))


_BADGES = {
    "folder": "DIR",
    "video": "VID",
    "audio": "AUD",
    "image": "IMG",
    "pdf": "PDF",
    "document": "DOC",
    "text": "TXT",
}


def _render_folder(request: Request, link: Link, db: Session, folder: Folder) -> HTMLResponse:
    entries, _cursor = library.children_of(db, folder=folder, limit=500)
    rows = []
    for entry in entries:
        kind = "folder" if entry.kind == "folder" else category(entry.content_type or "")
        param = "folder" if entry.kind == "folder" else "file"
        rows.append(
            {
                "name": entry.name,
                "kind": kind,
                "badge": _BADGES.get(kind, "FILE"),
                "size": entry.size,
                "url": f"/v/{link.id}?{param}={entry.id}",
            }
        )
    context = {"title": folder.name, "entries": rows, "crumbs": _crumbs(db, link, folder.id)[:-1]}
    return render(request, "delivery/folder.html", context, headers=_headers(link))


@router.get("/v/{link_id}", response_class=HTMLResponse)
def view(
    link_id: str,
    request: Request,
    services: ServicesDep,
    client: ClientIp,
    background: BackgroundTasks,
    file: uuid.UUID | None = None,
    folder: uuid.UUID | None = None,
) -> Response:
    """The viewer: checks the link, the embedding and the view limit, then shows the material."""
    # The admission writes (view count, sighting, refusal) in a short transaction of its own; the page
    # is rendered afterwards from a read session, so concurrent viewers do not queue on the write lock.
    with unit_of_work(services.write_sessions) as db:
        try:
            admission = links.admit_visit(db, link_id=link_id, facts=_facts(request, services, client))
        except NotFound:
            return blocked_page(request, "revoked", status=404) if links.is_link_id(link_id) else _not_a_link(request)
        link = admission.link
        assert link is not None
        if admission.suspended_now:
            links.notify_suspension(services, db, link=link, reason=admission.suspended_now)
    if admission.suspended_now:  # committed: the notices go out after the answer, outside any transaction
        background.add_task(notify.drain, services)
    if admission.refusal is not None:
        hits.record_for_link(services, request, type_="blocked", link=link, reason=admission.refusal)
        return blocked_page(request, admission.refusal, link=link)
    if admission.preview_only:
        hits.record_for_link(services, request, type_="view", link=link)  # flagged a bot by its user agent
        title = link.label or "Study material"
        return render(request, "delivery/preview.html", {"title": title}, headers=_headers(link))
    with unit_of_work(services.read_sessions) as db:
        return _show(request, services, db, link, file=file, folder=folder)


def _show(
    request: Request, services: Services, db: Session, link: Link, *, file: uuid.UUID | None, folder: uuid.UUID | None
) -> Response:
    """The file or folder asked for (by default what the link shares), if it lies inside the link."""
    if file is not None:
        kind, item_id = "file", file
    elif folder is not None:
        kind, item_id = "folder", folder
    else:
        kind, item_id = link.target_type, link.target_id
    try:
        item = _item_in_link(db, link, kind, item_id)
    except NotFound:
        return blocked_page(request, "deleted", status=404, link=link)
    if isinstance(item, File):
        return _render_file(request, services, link, db, item)
    return _render_folder(request, link, db, item)


def _not_a_link(request: Request) -> HTMLResponse:
    response = render(
        request,
        "delivery/blocked.html",
        {
            "headline": "This is not a valid link",
            "message": "Check that the whole address was copied.",
            "title": "Not a link",
        },
        status=404,
    )
    return response


class RenewRequest(BaseModel):
    token: str = Field(max_length=100)
    file_id: uuid.UUID


@router.post("/v/{link_id}/media")
def renew(link_id: str, body: RenewRequest, request: Request, services: ServicesDep, client: ClientIp) -> Response:
    """Fresh media URLs for a playing viewer, while the link (and the grant behind it) still stands."""
    if not links.is_link_id(link_id) or not check_viewer_token(
        services.settings.secret_key, link_id, body.token, time.time()
    ):
        raise PermissionDenied("This viewer session has ended; reload the page.")
    with unit_of_work(services.write_sessions) as db:
        link = db.get(Link, link_id)
        if link is None:
            raise NotFound("No such link.")
        state = links.link_state(db, link)
        if state is not None:
            links.record_refusal(db, link_id=link.id, reason=state, visitor=_facts(request, services, client).visitor)
            folders = hits.target_folders(db, link)
            hits.record(
                services, hits.link_hit(request, services, type_="blocked", link=link, reason=state, folders=folders)
            )
            refused: Response = JSONResponse(
                {"detail": _HEADLINES.get(state, _HEADLINES["revoked"])[0], "reason": state}, status_code=403
            )
            return refused
        try:
            item = _item_in_link(db, link, "file", body.file_id)
        except NotFound:
            return JSONResponse({"detail": "That item is not part of this link.", "reason": "deleted"}, status_code=404)
        assert isinstance(item, File)
        assert item.current_version is not None
        return JSONResponse(
            media_urls(services, link, item, item.current_version), headers={"cache-control": "no-store"}
        )


def record_media_refusal(request: Request, reason: str, link_id: str | None) -> None:
    """Keep a refused media URL (bad signature, expired) as a `blocked` event; called by the /m/ middleware."""
    services: Services = request.app.state.services
    visitor = links.Visitor(
        ip=client_ip(request.scope, services.settings.trusted_proxies),
        salt=services.settings.secret_key,
        origin=request.headers.get("referer", ""),
    )
    with unit_of_work(services.write_sessions) as db:
        links.record_refusal(db, link_id=link_id, reason=reason, visitor=visitor)
        hits.record(services, hits.media_refusal_hit(db, request, services, reason=reason, link_id=link_id))
