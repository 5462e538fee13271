"""One viewing path: a file or folder seen through a view scope (a share link or an LTI placement).

A scope's own pages decide whether a visit may see the material (admission for links, the launch for LTI);
from there the viewer page, its media URLs, its viewer and beacon tokens, the folder listing and the
renewal of media URLs are the same for every scope, here. A scope kind supplies a `ScopeAccess`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import NotFound, PermissionDenied
from studyshelf.core.ids import new_id, sha256_hex, uuid7_str
from studyshelf.core.keys import KeyRing, Purpose, TokenRefused
from studyshelf.delivery import hits
from studyshelf.delivery.captions import track_urls
from studyshelf.delivery.content import ContentFacts, ScopeFacts
from studyshelf.delivery.embed import origin_of
from studyshelf.delivery.streaming import allow_store_origin
from studyshelf.events import Hit
from studyshelf.events.beacon import sign_beacon
from studyshelf.library.listing import children_of
from studyshelf.library.models import File, Folder
from studyshelf.library.sniff import category
from studyshelf.services import Services
from studyshelf.signing import SetClaims, sign_set
from studyshelf.web.render import PageSkeletons, render
from studyshelf.web.security import proxied_request

VIEWER_TOKEN_SECONDS = 6 * 3600
BADGES = {
    "folder": "DIR",
    "video": "VID",
    "audio": "AUD",
    "image": "IMG",
    "pdf": "PDF",
    "document": "DOC",
    "text": "TXT",
}


def badge_of(kind: str) -> str:
    """The short tag a listing shows for a folder or a file category."""
    return BADGES.get(kind, "FILE")


class ViewerSessionEnded(PermissionDenied):
    type_slug = "viewer-session-ended"
    title = "This viewer session has ended"


class ViewUnavailable(PermissionDenied):
    """The scope no longer shows the material; `reason` is the refusal (expired, revoked, grant-revoked …)."""

    type_slug = "view-unavailable"
    title = "This material is not available"


class NotInView(NotFound):
    type_slug = "not-in-view"
    title = "Not part of this material"


class ViewScopeNotFound(NotFound):
    type_slug = "view-scope-not-found"
    title = "No such link or course launch"


@dataclass(frozen=True)
class ViewScope:
    """What a viewer page is seen through: a share link, or an LTI placement (a launch)."""

    kind: Literal["link", "lti"]
    scope_id: str  # the link id or `lti-<launch id>`: named by the viewer token and the signed media URLs
    facts: ScopeFacts  # whom the views serve: the partner, the link or the course
    root_type: str  # what the scope shares: a file or a folder (and everything below it)
    root_id: uuid.UUID
    allow_download: bool
    renew_url: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)  # CSP frame-ancestors, caching


class ScopeAccess(Protocol):
    """How one kind of scope is reopened for a renewal, and which items it reaches."""

    def open(self, services: Services, request: Request, scope_id: str) -> ViewScope:
        """The scope while it may still be used: ViewScopeNotFound, or ViewUnavailable after recording why."""
        ...

    def reach(self, db: Session, scope: ViewScope, kind: str, item_id: uuid.UUID, now: datetime) -> File | Folder:
        """A live item at or below the scope's root (NotInView) that the scope still serves (ViewUnavailable)."""
        ...


def viewer_token(keys: KeyRing, scope_id: str, expires: int) -> str:
    return keys.encode(Purpose.VIEWER_TOKEN, scope_id, expires)


def check_viewer_token(keys: KeyRing, scope_id: str, token: str, now: float) -> bool:
    try:
        return bool(keys.decode(Purpose.VIEWER_TOKEN, token, now) == scope_id)
    except TokenRefused:
        return False


def media_urls(services: Services, scope: ViewScope, content: ContentFacts) -> dict[str, Any]:
    """Fresh signed URLs for a version's bytes and its caption tracks (and a download URL when the scope allows it)."""
    ttl = services.settings.media_url_ttl_seconds
    expires = int(services.clock.time()) + ttl

    def sign(download: bool) -> str:
        return services.signer.sign(content.media_claims(scope_id=scope.scope_id, expires=expires, download=download))

    tracks = list(content.captions)
    return {
        "url": sign(False),
        "download_url": sign(True) if scope.allow_download else None,
        "captions": track_urls(
            services.signer.sign, tracks, scope_id=scope.scope_id, filename=content.filename, expires=expires
        ),
        "expires_at": expires,
        "refresh_after": max(30, ttl - 90),
        **processed_urls(services, scope, content, expires),
    }


def processed_urls(services: Services, scope: ViewScope, content: ContentFacts, expires: int) -> dict[str, str]:
    """URLs of the version's processed outputs, all under one signed prefix (none while it has none).

    Behind a CDN the set is not offered (one CDN signature per URL would be needed): the original plays."""
    if content.media_generation == 0 or services.signer.cdn is not None:
        return {}
    claims = SetClaims(expires, scope.scope_id, content.version_id, content.media_generation)
    prefix = sign_set(services.signer, claims)
    kind, renditions = content.kind, content.media_renditions
    urls = {"media_prefix": prefix}
    if kind == "video" and renditions and renditions != ("audio",):
        urls |= {
            "hls_url": prefix + "master.m3u8",
            "poster_url": prefix + "poster.jpg",
            "previews_url": prefix + "thumbs.vtt",
        }
    if "audio" in renditions:
        urls["audio_url"] = prefix + "audio.m4a"
    if "web" in renditions:
        urls["image_url"] = prefix + "web.jpg"
    return urls


@dataclass(frozen=True)
class Crumb:
    name: str
    url: str


@dataclass(frozen=True)
class Placement:
    """An LTI placement as its teachers see it above the material."""

    name: str
    views: int
    context: str


def file_content(db: Session, file: File, *, folders: tuple[str, ...] | None = None) -> ContentFacts:
    """What the viewer page of a file shows (its current version), read once; `folders` if known already."""
    version = file.current_version
    if version is None:
        raise ViewUnavailable("This file has no content yet.", reason="deleted")
    return ContentFacts.of(db, file, version, folders=folders)


def view_hit(request: Request, services: Services, scope: ViewScope, content: ContentFacts) -> Hit:
    """The `view` of one viewer page: a new viewer session, and an event id chosen here (a counter may keep
    the event before it is published).

    Behind the reference nginx the id and time come from the proxy's request id and start time: when an instance
    dies after recording a view but before answering, nginx sends the same request to another instance, whose
    view has the same id and time, so the warehouse and the counters keep it once (tests/scaleout)."""
    client = hits.client_facts(request, services)
    proxied = proxied_request(request.scope, services.settings.trusted_proxies, now=services.clock.time())
    if proxied is None:
        at, event_id = services.clock.now(), str(new_id())
    else:
        request_id, started_ms = proxied
        at = datetime.fromtimestamp(started_ms / 1000, UTC)
        event_id = uuid7_str(started_ms, int(sha256_hex(f"view|{request_id}")[:20], 16))
    hit = content.hit(type_="view", at=at, scope=scope.facts, client=client, session=hits.new_session())
    return replace(hit, event_id=event_id)


def file_page(
    request: Request,
    services: Services,
    scope: ViewScope,
    content: ContentFacts,
    view: Hit,
    *,
    crumbs: Sequence[Crumb] = (),
    placement: Placement | None = None,
) -> HTMLResponse:
    """The viewer page of a counted view: its media URLs, viewer and beacon tokens signed (no database)."""
    now = int(services.clock.time())
    expires = now + VIEWER_TOKEN_SECONDS
    beacon = content.beacon_claims(
        scope=scope.facts, session=view.session, issued=now, expires=expires, referer=origin_of(view.referer) or ""
    )
    urls = media_urls(services, scope, content)
    context: dict[str, Any] = {
        "title": content.filename,
        "kind": content.kind,
        "content_type": content.content_type,
        "size": content.size,
        "media_url": urls["url"],
        "hls_url": urls.get("hls_url"),
        "poster_url": urls.get("poster_url"),
        "previews_url": urls.get("previews_url"),
        "audio_url": urls.get("audio_url"),
        "image_url": urls.get("image_url"),
        "download_url": urls["download_url"],
        "captions": urls["captions"],
        "cross_origin_media": services.signer.media_origin is not None,
        "refresh_after": urls["refresh_after"],
        "renew_url": scope.renew_url,
        "viewer_token": viewer_token(services.keys, scope.scope_id, expires),
        "beacon_token": sign_beacon(services.keys, beacon),
        "file_id": content.file_id,
        "crumbs": list(crumbs),
        "placement": placement,
    }
    headers = allow_store_origin(scope.headers, services.blobs, cdn_origin=services.signer.media_origin)
    if crumbs or placement is not None:
        return render(request, "delivery/viewer.html", context, headers=headers)
    return _from_skeleton(request, context, headers)


# The page of a file shown on its own (a share link's visit, a placement's learner) is the same for every
# visit but for its signed URLs and tokens: rendered once per link, file version, language and set of URLs.
_skeletons = PageSkeletons()
_PER_VISIT = ("media_url", "hls_url", "poster_url", "previews_url", "audio_url", "image_url", "download_url")
_PER_VISIT_TOKENS = ("viewer_token", "beacon_token")


def _from_skeleton(request: Request, context: dict[str, Any], headers: dict[str, str]) -> HTMLResponse:
    fills: list[str] = []

    def slot(value: str) -> str:
        fills.append(value)
        return _skeletons.slot(len(fills) - 1)

    shaped = dict(context)
    for name in (*_PER_VISIT, *_PER_VISIT_TOKENS):
        if context[name]:  # absent stays absent: the page's `{% if %}`s see the same truth
            shaped[name] = slot(context[name])
    shaped["captions"] = [{**track, "url": slot(track["url"])} for track in context["captions"]]
    # What the page shows but its slots: the slots' markers depend only on which values are there.
    key = tuple(
        (name, tuple(tuple(track.items()) for track in value) if name == "captions" else value)
        for name, value in shaped.items()
        if name not in ("crumbs", "placement")  # empty and None here: `file_page` renders the others in full
    )
    return _skeletons.render(request, "delivery/viewer.html", key, shaped, fills, headers=headers)


def render_file(
    request: Request,
    services: Services,
    db: Session,
    scope: ViewScope,
    file: File,
    *,
    crumbs: Sequence[Crumb] = (),
    placement: Placement | None = None,
) -> HTMLResponse:
    """The viewer page of a file: counts the view, signs its media URLs and its viewer and beacon tokens."""
    content = file_content(db, file)
    view = view_hit(request, services, scope, content)
    hits.record(services, view)
    return file_page(request, services, scope, content, view, crumbs=crumbs, placement=placement)


def render_folder(
    request: Request,
    db: Session,
    scope: ViewScope,
    folder: Folder,
    *,
    item_url: Callable[[str, uuid.UUID], str],
    crumbs: Sequence[Crumb] = (),
) -> HTMLResponse:
    """The listing of a folder inside the scope; `item_url(kind, id)` links each entry within the scope."""
    entries, _cursor = children_of(db, folder=folder, limit=500)
    rows = []
    for entry in entries:
        kind = "folder" if entry.kind == "folder" else category(entry.content_type or "")
        rows.append(
            {
                "name": entry.name,
                "kind": kind,
                "badge": badge_of(kind),
                "size": entry.size,
                "url": item_url("folder" if entry.kind == "folder" else "file", entry.id),
            }
        )
    context = {"title": folder.name, "entries": rows, "crumbs": list(crumbs)}
    return render(request, "delivery/folder.html", context, headers=scope.headers)


class RenewRequest(BaseModel):
    token: str = Field(max_length=100)
    file_id: uuid.UUID


def renew_media(
    services: Services, request: Request, access: ScopeAccess, *, scope_id: str, body: RenewRequest
) -> dict[str, Any]:
    """Fresh media URLs for a playing viewer, while its scope still serves the file (problem+json otherwise)."""
    if not check_viewer_token(services.keys, scope_id, body.token, services.clock.time()):
        raise ViewerSessionEnded("This viewer session has ended; reload the page.")
    scope = access.open(services, request, scope_id)
    with unit_of_work(services.read_sessions) as db:
        item = access.reach(db, scope, "file", body.file_id, services.clock.now())
        if not isinstance(item, File):
            raise NotInView("That item is not a file of this material.")
        if item.current_version is None:
            raise ViewUnavailable("This file has no content any more.", reason="deleted")
        content = ContentFacts.of(db, item, item.current_version)
    return media_urls(services, scope, content)
