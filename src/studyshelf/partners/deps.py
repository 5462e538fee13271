"""Request dependencies: the database session, who is asking, and CSRF for cookie-authenticated writes."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from studyshelf.core.errors import CsrfFailed, NotAuthenticated
from studyshelf.partners import service
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web.security import client_ip, is_cross_site

SESSION_COOKIE = "studyshelf_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# The small dependencies below are `async def`: they do no I/O, and a sync one costs a trip to the
# threadpool on every request that uses it (the viewer used three).
def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_now(services: ServicesDep) -> datetime:
    """The request's "now", from the services' clock (one reading per request)."""
    return services.clock.now()


Now = Annotated[datetime, Depends(get_now)]


def get_db(request: Request, services: ServicesDep) -> Iterator[Session]:
    """One session per request; committed when the handler returns, before the response goes out."""
    factory = services.read_sessions if request.method in SAFE_METHODS else services.write_sessions
    db = factory()
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()


DbSession = Annotated[Session, Depends(get_db, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _check_csrf(request: Request, principal: Principal) -> None:
    if request.method in SAFE_METHODS or principal.session is None:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, principal.session.csrf_token):
        raise CsrfFailed("The form expired or came from another site. Reload the page and try again.")


CROSS_SITE = "This sign-in came from a page of another site. Open StudyShelf yourself and sign in there."


def refuse_cross_site(request: Request, services: ServicesDep) -> None:
    """Refuse a sign-in or sign-up that a browser posted from another site (login CSRF).

    There is no session, hence no CSRF token, yet: the browser's Sec-Fetch-Site, Origin or Referer decides
    (web/security.py, is_cross_site). Writes of a signed-in browser need the token (_check_csrf).
    """
    if is_cross_site(request.scope, base_url=services.settings.base_url):
        raise CsrfFailed(CROSS_SITE)


def resolve_principal(request: Request, db: Session) -> Principal | None:
    now = services_of(request).clock.now()
    token = _bearer(request)
    if token is not None:
        principal = service.resolve_api_token(db, token, now=now)
        if principal is None:
            raise NotAuthenticated("The API token is not valid or was revoked.")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    return service.resolve_session(db, cookie, now=now) if cookie else None


def get_optional_principal(request: Request, db: DbSession) -> Principal | None:
    principal = resolve_principal(request, db)
    if principal is not None:
        principal = replace(principal, request_id=getattr(request.state, "request_id", ""))
    request.state.principal = principal
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(request: Request, principal: OptionalPrincipal) -> Principal:
    """The signed-in principal; cookie-authenticated writes must also carry the CSRF token."""
    if principal is None:
        raise NotAuthenticated("Sign in or send an API token.")
    await _check_csrf(request, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_client_ip(request: Request, services: ServicesDep) -> str:
    return client_ip(request.scope, services.settings.trusted_proxies)


ClientIp = Annotated[str, Depends(get_client_ip)]
