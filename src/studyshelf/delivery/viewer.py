"""The viewer behind a share link: `/v/{link_id}` (admission, then the one viewing path), and its renewals."""

from __future__ import annotations

import contextlib
import inspect
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import NotFound
from studyshelf.delivery import admission, hits, links, media, radar, view_counts, viewing
from studyshelf.delivery.api import current_epoch
from studyshelf.delivery.content import ContentFacts, ScopeFacts
from studyshelf.delivery.embed import frame_ancestors, origin_of
from studyshelf.delivery.models import Link
from studyshelf.library.access import content_path_ids, folder_path
from studyshelf.library.models import File, Folder
from studyshelf.limits import LimitsUnavailable
from studyshelf.notify import service as notify
from studyshelf.partners.deps import ClientIp, Now, ServicesDep
from studyshelf.services import Services
from studyshelf.web.assets import script_src
from studyshelf.web.i18n import N_
from studyshelf.web.render import render
from studyshelf.web.security import client_ip

router = APIRouter(include_in_schema=False)

_HEADLINES = {
    "expired": (N_("This link has expired"), N_("Ask your teacher for a new link to this material.")),
    "revoked": (N_("This link was withdrawn"), N_("The material is no longer shared through this link.")),
    "suspended": (
        N_("This link is paused"),
        N_("It was used in more places than one course would; its owner has been told."),
    ),
    "deleted": (N_("This material was removed"), N_("It is no longer in the library.")),
    "grant-revoked": (N_("This material is no longer shared"), N_("Your institution's access to it has ended.")),
    "over-limit": (
        N_("This link has been used up"),
        N_("It allowed a limited number of views, and they are all used."),
    ),
    "top-level": (N_("This material is available inside your course"), N_("Open it from your course page in the LMS.")),
    "origin": (N_("This material is available inside your course"), N_("It cannot be shown on this website.")),
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


def _facts(request: Request, services: Services, client: str) -> admission.VisitFacts:
    h = request.headers
    origin = h.get("origin") or h.get("referer") or ""
    return admission.VisitFacts(
        visitor=radar.Visitor(ip=client, salt=services.settings.secret_key, origin=origin),
        own_origin=_own_origin(request),
        sec_fetch_dest=h.get("sec-fetch-dest"),
        sec_fetch_site=h.get("sec-fetch-site"),
        referer=h.get("referer"),
        user_agent=h.get("user-agent"),
    )


def blocked_page(request: Request, reason: str, *, status: int = 403, link: Link | None = None) -> HTMLResponse:
    """The friendly refusal; with the link's frame-ancestors, so a learner sees it inside the course page."""
    headline, message = _HEADLINES.get(reason, _HEADLINES["revoked"])
    context = {"headline": headline, "message": message, "title": headline}
    headers = _headers(link) if link is not None else None
    response = render(request, "delivery/blocked.html", context, status=status, headers=headers)
    response.headers["cache-control"] = "no-store"
    return response


def _crumbs(db: Session, link: Link, folder_id: uuid.UUID) -> list[viewing.Crumb]:
    if link.target_type != "folder":
        return []
    path = folder_path(db, folder_id)
    start = next(i for i, f in enumerate(path) if f.id == link.target_id)
    return [
        viewing.Crumb(f.name, f"/v/{link.id}" if f.id == link.target_id else f"/v/{link.id}?folder={f.id}")
        for f in path[start:]
    ]


def link_scope(link: Link) -> viewing.ViewScope:
    """The view scope of a share link."""
    return viewing.ViewScope(
        kind="link",
        scope_id=link.id,
        facts=ScopeFacts(str(link.org_id), link_id=link.id),
        root_type=link.target_type,
        root_id=link.target_id,
        allow_download=link.allow_download,
        renew_url=f"/v/{link.id}/media",
        headers=_headers(link),
    )


class LinkAccess:
    """Share links as a view scope: reopened for a renewal while the link (and the grant behind it) stands."""

    def open(self, services: Services, request: Request, scope_id: str) -> viewing.ViewScope:
        if not links.is_link_id(scope_id):
            raise viewing.ViewScopeNotFound("No such link.")
        with unit_of_work(services.write_sessions) as db:
            link = db.get(Link, scope_id)
            if link is None:
                raise viewing.ViewScopeNotFound("No such link.")
            state = admission.link_state(db, link, services.clock.now())
            if state is None:
                return link_scope(link)
            client = client_ip(request.scope, services.settings.trusted_proxies)
            visitor = _facts(request, services, client).visitor
            radar.record_refusal(db, geo=services.geo, link_id=link.id, reason=state, visitor=visitor)
            folders = hits.target_folders(db, link)
            hits.record(
                services, hits.link_hit(request, services, type_="blocked", link=link, reason=state, folders=folders)
            )
        raise viewing.ViewUnavailable(_HEADLINES.get(state, _HEADLINES["revoked"])[0], reason=state)

    def reach(
        self, db: Session, scope: viewing.ViewScope, kind: str, item_id: uuid.UUID, now: datetime
    ) -> File | Folder:
        found = content_path_ids(db, target_type=kind, target_id=item_id)
        if found is None or scope.root_id not in found[1]:
            raise viewing.NotInView("That item is not part of this link.", reason="deleted")
        item = db.get(File, item_id) if kind == "file" else db.get(Folder, item_id)
        assert item is not None
        return item


LINK_ACCESS = LinkAccess()


@router.get("/v/{link_id}", response_class=HTMLResponse)
def view(
    link_id: str,
    request: Request,
    services: ServicesDep,
    client: ClientIp,
    background: BackgroundTasks,
    now: Now,
    file: uuid.UUID | None = None,
    folder: uuid.UUID | None = None,
) -> Response:
    """The viewer: checks the link, the embedding and the view limit, then shows the material."""
    return visit(link_id, request, services, client, background, now, file=file, folder=folder)


def visit(
    link_id: str,
    request: Request,
    services: Services,
    client: str,
    background: BackgroundTasks,
    now: datetime,
    *,
    file: uuid.UUID | None = None,
    folder: uuid.UUID | None = None,
    epoch: int | None = None,
) -> Response:
    """One visit to a link, read and decided afresh. With the access epoch (read before anything is decided:
    the plain visit of `ViewerFastPath`), a usable file link's read is kept in `admission.visits` for the next."""
    # One read session decides and gathers the page; only a link with a view limit writes (its count, with
    # the view's event line), after it. Sightings and counters of other links leave through batches.
    facts = _facts(request, services, client)
    with unit_of_work(services.read_sessions) as db:
        try:
            admitted = admission.admit_visit(db, link_id=link_id, facts=facts, now=now, epoch=epoch)
        except NotFound:
            return blocked_page(request, "revoked", status=404) if links.is_link_id(link_id) else _not_a_link(request)
        if admitted.refusal is not None or admitted.preview_only:
            shown: _FilePage | Response | None = None
        else:
            shown = _gather(request, services, db, admitted, file=file, folder=folder, now=now)
    link = admitted.link
    if admitted.refusal is not None:
        return _refuse(request, services, background, link, admitted.refusal, facts, now)
    if admitted.preview_only:
        hits.record_for_link(services, request, type_="view", link=link)  # flagged a bot by its user agent
        title = link.label or N_("Study material")
        return render(request, "delivery/preview.html", {"title": title}, headers=_headers(link))
    if not isinstance(shown, _FilePage):
        assert shown is not None
        return shown  # a folder's listing, or the refusal of an item outside the link
    seen = viewing.view_hit(request, services, shown.scope, shown.content)
    if link.max_views is not None:
        line = services.hits.event_line(seen)
        assert seen.event_id is not None
        with unit_of_work(services.write_sessions) as db:
            counted = view_counts.count_limited_view(db, link=link, event_id=seen.event_id, line=line, at=now)
        if not counted:
            return _refuse(request, services, background, link, "over-limit", facts, now)
    sightings(request).note(link_id=link.id, visitor=facts.visitor, now=now)
    hits.record(services, seen)
    return viewing.file_page(request, services, shown.scope, shown.content, seen, crumbs=shown.crumbs)


_PLAIN_VISIT = re.compile(r"/v/([^/]+)")


class ViewerFastPath:
    """Answers the plain visit, `GET /v/{link_id}` with no query string, before FastAPI's router.

    A class rush is almost all such visits; matching the path against the routes and solving the route's
    dependencies cost a view about as much CPU as a whole `/healthz`. It calls the same `visit` as the route,
    with what its dependencies would give, and turns a domain error into the app's own answer. It sits inside
    the request observer, the media URLs, the security headers and the body limit, so the request id,
    metrics, access line, headers and limits stay the same; anything else (`?file=`, `?folder=`, other
    methods, a root path) goes on to the route unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and not scope.get("root_path")
            and (match := _PLAIN_VISIT.fullmatch(scope["path"])) is not None
        ):
            await self._visit(match[1], scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _visit(link_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        services: Services = scope["app"].state.services
        client = client_ip(scope, services.settings.trusted_proxies)
        background = BackgroundTasks()
        try:
            # The epoch is read before anything is decided (and shared with the visits waiting for it), so
            # a remembered read is used only while nothing that could take access away has changed since.
            epoch = await current_epoch(request, services)
            now = services.clock.now()
            response = await _remembered_page(link_id, request, services, client, now, epoch)
            if response is None:
                response = await run_in_threadpool(
                    visit, link_id, request, services, client, background, now, epoch=epoch
                )
        except Exception as exc:
            handler = _handler_of(scope["app"].exception_handlers, exc)
            if handler is None:
                raise  # as from the route: the server error middleware answers it
            answered = handler(request, exc)
            response = await answered if inspect.isawaitable(answered) else answered
        if background.tasks and response.background is None:
            response.background = background
        await response(scope, receive, send)


async def _remembered_page(
    link_id: str, request: Request, services: Services, client: str, now: datetime, epoch: int
) -> Response | None:
    """A visit admitted from the link's remembered read, answered on the event loop: nothing to read, the
    event's durable publish awaited (shared with the visits beside it), the page rendered. None when the
    visit needs `visit` in a worker thread (a read, a refusal to record, a previewer)."""
    facts = _facts(request, services, client)
    admitted = admission.remembered_visit(link_id, facts=facts, now=now, epoch=epoch)
    if admitted is None or admitted.refusal is not None or admitted.preview_only or admitted.content is None:
        return None
    scope = link_scope(admitted.link)
    seen = viewing.view_hit(request, services, scope, admitted.content)
    sightings(request).note(link_id=admitted.link.id, visitor=facts.visitor, now=now)
    await services.hits.record_async(seen)
    return viewing.file_page(request, services, scope, admitted.content, seen)


def _handler_of(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for an error, found as Starlette's exception middleware finds it (by class, nearest
    first); None for the catch-all ones, which belong to the server error middleware."""
    for cls in type(exc).__mro__:
        if cls in (Exception, BaseException):
            return None
        if cls in handlers:
            return handlers[cls]
    return None


def sightings(request: Request) -> radar.SightingRecorder:
    """This process's leak-radar sightings (made with the app: `create_app`)."""
    recorder: radar.SightingRecorder = request.app.state.sightings
    return recorder


@dataclass(frozen=True)
class _FilePage:
    scope: viewing.ViewScope
    content: ContentFacts
    crumbs: list[viewing.Crumb]


def _refuse(
    request: Request,
    services: Services,
    background: BackgroundTasks,
    link: Link,
    reason: str,
    facts: admission.VisitFacts,
    now: datetime,
) -> Response:
    """Record a refused visit (and a suspension it causes), then show the friendly refusal."""
    with unit_of_work(services.write_sessions) as db:
        fresh = db.get(Link, link.id)
        assert fresh is not None
        suspended = admission.record_refusal(
            db, geo=services.geo, link=fresh, reason=reason, visitor=facts.visitor, now=now
        )
        if suspended:
            radar.notify_suspension(services, db, link=fresh, reason=suspended)
    if suspended:  # committed: the notices go out after the answer, outside any transaction
        background.add_task(notify.drain, services)
    hits.record_for_link(services, request, type_="blocked", link=link, reason=reason)
    return blocked_page(request, reason, link=link)


def _gather(
    request: Request,
    services: Services,
    db: Session,
    admitted: admission.Admission,
    *,
    file: uuid.UUID | None,
    folder: uuid.UUID | None,
    now: datetime,
) -> _FilePage | Response:
    """The file asked for (by default what the link shares) as read for its page, or a folder's listing,
    if it lies inside the link."""
    link = admitted.link
    if file is not None:
        kind, item_id = "file", file
    elif folder is not None:
        kind, item_id = "folder", folder
    else:
        kind, item_id = link.target_type, link.target_id
    scope = link_scope(link)
    if (kind, item_id) == ("file", link.target_id) and link.target_type == "file":
        # The link's own file (the usual visit): admission has just read it, its version and its folders.
        if admitted.content is not None:
            return _FilePage(scope, admitted.content, [])
        target = db.get(File, item_id)
        assert target is not None
        folders = tuple(str(i) for i in admitted.target_path[:-1])
        return _FilePage(scope, viewing.file_content(db, target, folders=folders), [])
    try:
        item = LINK_ACCESS.reach(db, scope, kind, item_id, now=now)
    except viewing.NotInView:
        return blocked_page(request, "deleted", status=404, link=link)
    if isinstance(item, File):
        crumbs = _crumbs(db, link, item.folder_id)
        return _FilePage(scope, viewing.file_content(db, item), crumbs)

    def item_url(kind: str, item_id: uuid.UUID) -> str:
        return f"/v/{link.id}?{kind}={item_id}"

    crumbs = _crumbs(db, link, item.id)[:-1]
    return viewing.render_folder(request, db, scope, item, item_url=item_url, crumbs=crumbs)


def _not_a_link(request: Request) -> HTMLResponse:
    response = render(
        request,
        "delivery/blocked.html",
        {
            "headline": N_("This is not a valid link"),
            "message": N_("Check that the whole address was copied."),
            "title": N_("Not a link"),
        },
        status=404,
    )
    return response


@router.post("/v/{link_id}/media")
def renew(link_id: str, body: viewing.RenewRequest, request: Request, services: ServicesDep) -> JSONResponse:
    """Fresh media URLs for a playing viewer, while the link (and the grant behind it) still stands."""
    urls = viewing.renew_media(services, request, LINK_ACCESS, scope_id=link_id, body=body)
    return JSONResponse(urls, headers={"cache-control": "no-store"})


def record_media_refusal(request: Request, reason: str, link_id: str | None) -> None:
    """Keep a refused media URL (bad signature, expired) as a `blocked` event; called by the /m/ middleware."""
    services: Services = request.app.state.services
    client = client_ip(request.scope, services.settings.trusted_proxies)
    keys = media.refusal_window(client, services.clock.time())
    if not media.admit_refusal(services, keys):
        return  # another request of this client was recorded this second, on this instance or another
    visitor = radar.Visitor(ip=client, salt=services.settings.secret_key, origin=request.headers.get("referer", ""))
    try:
        with unit_of_work(services.write_sessions) as db:
            radar.record_refusal(db, geo=services.geo, link_id=link_id, reason=reason, visitor=visitor)
            hits.record(services, hits.media_refusal_hit(db, request, services, reason=reason, link_id=link_id))
    except Exception:
        with contextlib.suppress(LimitsUnavailable, SQLAlchemyError):  # the recording's own error is the one to see
            services.limits.withdraw(**keys)  # not recorded: the next refusal of this client may be
        raise
