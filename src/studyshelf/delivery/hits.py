"""What delivery tells analytics: a `Hit` per view, download or refusal, through `Services.hits`.

Delivery does not know analytics (the arrows point down); it fills the plain `events.Hit` with what it
already has (link, file, version, folders) and the request's client facts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.requests import Request

from studyshelf.delivery.content import ContentFacts, ScopeFacts
from studyshelf.delivery.models import Link
from studyshelf.delivery.transfers import Transfer
from studyshelf.events import Hit
from studyshelf.events.schema import ClientFacts
from studyshelf.library.access import content_path_ids
from studyshelf.library.models import File, FileVersion
from studyshelf.services import Services
from studyshelf.signing import MediaClaims
from studyshelf.web.security import client_ip


def client_facts(request: Request, services: Services) -> ClientFacts:
    """What the request says about its client (read by enrichment, never stored)."""
    h = request.headers
    return {
        "client_ip": client_ip(request.scope, services.settings.trusted_proxies),
        "user_agent": h.get("user-agent", ""),
        "referer": h.get("referer") or h.get("origin") or "",
    }


def target_folders(db: Session, link: Link) -> tuple[str, ...]:
    """The folders of a link's target (itself, for a folder), root first; () when it is gone."""
    found = content_path_ids(db, target_type=link.target_type, target_id=link.target_id)
    if found is None:
        return ()
    ids = found[1][:-1] if link.target_type == "file" else found[1]
    return tuple(str(i) for i in ids)


def link_hit(
    request: Request,
    services: Services,
    *,
    type_: str,
    link: Link | None,
    reason: str = "",
    folders: tuple[str, ...] = (),
) -> Hit:
    """A hit known only by its link (refusals, previews): the link's target stands in for the file."""
    target_file = link is not None and link.target_type == "file"
    return Hit(
        type=type_,
        at=services.clock.now(),
        link_id=link.id if link else None,
        owner_org_id=str(link.owner_org_id) if link else None,
        partner_org_id=str(link.org_id) if link else None,
        file_id=str(link.target_id) if link and target_file else None,
        folder_path=folders,
        reason=reason,
        **client_facts(request, services),
    )


def record(services: Services, hit: Hit) -> None:
    services.hits.record(hit)


def new_session() -> str:
    return uuid.uuid4().hex[:16]


def media_refusal_hit(db: Session, request: Request, services: Services, *, reason: str, link_id: str | None) -> Hit:
    """A refused /m/ URL as a `blocked` event of the link it names (an unverified id: it only decides
    which organisations see the refusal)."""
    link = db.get(Link, link_id) if link_id and len(link_id) <= 32 else None
    folders = target_folders(db, link) if link is not None else ()
    return link_hit(request, services, type_="blocked", link=link, reason=reason, folders=folders)


def record_for_link(services: Services, request: Request, *, type_: str, link: Link, reason: str = "") -> None:
    """Record a hit known by its link (a refusal, a previewer's visit), outside any transaction."""
    with services.read_sessions() as db:
        folders = target_folders(db, link)
    services.hits.record(link_hit(request, services, type_=type_, link=link, reason=reason, folders=folders))


def record_download(request: Request, claims: MediaClaims, sent: int, complete: bool) -> None:
    """The `MediaUrls.on_download` hook: a finished download, or an aborted one (`load_fail`, aborted)."""
    services: Services = request.app.state.services
    with services.read_sessions() as db:
        link = db.get(Link, claims.link_id)
        version = db.get(FileVersion, uuid.UUID(claims.version_id))
        file = db.get(File, version.file_id) if version is not None else None
        if link is None or version is None or file is None:
            return  # deleted since the URL was signed: nothing left to attribute the bytes to
        content = ContentFacts.of(db, file, version)
    hit = content.hit(
        type_="download" if complete else "load_fail",
        at=services.clock.now(),
        scope=ScopeFacts(str(link.org_id), link_id=link.id),
        client=client_facts(request, services),
        sent_bytes=sent,
    )
    services.hits.record(replace(hit, error_class="") if complete else replace(hit, error_class="aborted"))


ScopeResolver = Callable[[Session, str], ScopeFacts | None]
_SCOPES: dict[str, ScopeResolver] = {}


def register_scope(prefix: str, resolver: ScopeResolver) -> None:
    """Let a higher layer (lti) say whom the media URLs of its scopes serve: delivery cannot import it."""
    _SCOPES[prefix] = resolver


def _scope_facts(db: Session, scope: str) -> ScopeFacts | None:
    if len(scope) <= 32:
        link = db.get(Link, scope)
        return ScopeFacts(str(link.org_id), link_id=link.id) if link is not None else None
    for prefix, resolver in _SCOPES.items():
        if scope.startswith(prefix):
            return resolver(db, scope)
    return None


def record_transfers(services: Services, transfers: list[Transfer]) -> None:
    """The `MediaUrls.on_transfer` hook: one `transfer` event (bytes only) per tallied viewer and file."""
    hits: list[Hit] = []
    with services.read_sessions() as db:
        for transfer in transfers:
            key = transfer.key
            try:
                version = db.get(FileVersion, uuid.UUID(key.version_id))
            except ValueError:
                continue
            file = db.get(File, version.file_id) if version is not None else None
            facts = _scope_facts(db, key.link_id)
            if version is None or file is None or facts is None:
                continue  # deleted since, or a scope nobody can name: no organisation to give the bytes to
            content = ContentFacts.of(db, file, version)
            client: ClientFacts = {
                "client_ip": key.client_ip,
                "user_agent": key.user_agent,
                "referer": transfer.referer,
            }
            at = datetime.fromtimestamp(transfer.started, UTC)
            hits.append(
                content.hit(
                    type_="transfer",
                    at=at,
                    scope=facts,
                    client=client,
                    session=transfer.session,
                    sent_bytes=transfer.bytes,
                )
            )
    for hit in hits:
        services.hits.record(hit)
