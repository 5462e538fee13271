"""HTML pages for signing in and out, switching organisation, and personal API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import Invalid, NotAuthenticated, TooManyRequests
from studyshelf.partners import service
from studyshelf.partners.api import sign_in
from studyshelf.partners.deps import (
    SESSION_COOKIE,
    ClientIp,
    CurrentPrincipal,
    DbSession,
    OptionalPrincipal,
    ServicesDep,
)
from studyshelf.partners.models import Organization, Role
from studyshelf.partners.principal import Principal
from studyshelf.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
FormStr = Annotated[str, Form()]


def current_org_id(principal: Principal) -> uuid.UUID | None:
    """The organisation the browser session is working in (the first membership when none was chosen)."""
    member_of = [m.org_id for m in principal.user.memberships]
    chosen = principal.session.current_org_id if principal.session else None
    return chosen if chosen in member_of else (member_of[0] if member_of else None)


@dataclass(frozen=True)
class OrgChoice:
    """An organisation as the top bar shows it (plain values: error pages render after the session is gone)."""

    id: uuid.UUID
    name: str
    role: Role


@dataclass(frozen=True)
class Viewer:
    email: str
    name: str


def page_principal(request: Request, principal: CurrentPrincipal) -> Principal:
    """The signed-in principal of an HTML page; also fills what every page shows (user, organisations, CSRF)."""
    choices = [OrgChoice(m.org_id, m.organization.name, m.role) for m in principal.user.memberships]
    choices.sort(key=lambda choice: choice.name.casefold())
    current = current_org_id(principal)
    request.state.template_context = {
        "me": Viewer(principal.user.email, principal.user.name),
        "memberships": choices,
        "current_org": next((choice for choice in choices if choice.id == current), None),
        "csrf_token": principal.session.csrf_token if principal.session else "",
    }
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def safe_next(target: str | None) -> str:
    """Only ever redirect within this site after sign-in."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: OptionalPrincipal, next: str | None = None) -> Response:
    if principal is not None and principal.session is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "partners/login.html", {"next": safe_next(next), "email": ""})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    db: DbSession,
    services: ServicesDep,
    client: ClientIp,
    email: FormStr,
    password: FormStr,
    next: FormStr = "/",
) -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    try:
        sign_in(request, response, db=db, services=services, email=email, password=password, client=client)
    except (NotAuthenticated, TooManyRequests) as exc:
        context = {"next": safe_next(next), "email": email, "error": exc.detail}
        return render(request, "partners/login.html", context, status=exc.status)
    return response


@router.post("/logout")
def logout(principal: CurrentPrincipal, db: DbSession) -> Response:
    if principal.session is not None:
        service.end_session(db, session=principal.session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/orgs/switch")
def switch_org(principal: PagePrincipal, db: DbSession, org_id: Annotated[uuid.UUID, Form()]) -> Response:
    service.switch_organization(db, principal=principal, org_id=org_id)
    return RedirectResponse("/", status_code=303)


def _token_scope(org_id: str, role: str) -> tuple[uuid.UUID | None, Role | None]:
    """Parse the optional organisation and role cap of the create-token form."""
    try:
        return (uuid.UUID(org_id) if org_id else None, Role(role) if role else None)
    except ValueError as exc:
        raise Invalid("Choose an organisation and a role from the lists.") from exc


def _tokens_page(request: Request, principal: Principal, db: DbSession, **extra: Any) -> Response:
    orgs: dict[uuid.UUID, Organization] = {m.org_id: m.organization for m in principal.user.memberships}
    context = {
        "tokens": service.list_api_tokens(db, user=principal.user),
        "org_names": {k: o.name for k, o in orgs.items()},
    }
    context.update(roles=list(Role), **extra)
    block = "tokens" if is_htmx(request) else None
    return render(request, "partners/tokens.html", context, block=block)


@router.get("/settings/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, principal: PagePrincipal, db: DbSession) -> Response:
    return _tokens_page(request, principal, db)


@router.post("/settings/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, principal: PagePrincipal, db: DbSession, name: FormStr, org_id: FormStr = "", role: FormStr = ""
) -> Response:
    scope_org, scope_role = _token_scope(org_id, role)
    token, plaintext = service.create_api_token(db, user=principal.user, name=name, org_id=scope_org, role=scope_role)
    return _tokens_page(request, principal, db, created=token, plaintext=plaintext)


@router.post("/settings/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(request: Request, token_id: uuid.UUID, principal: PagePrincipal, db: DbSession) -> Response:
    service.revoke_api_token(db, user=principal.user, token_id=token_id)
    return _tokens_page(request, principal, db, revoked=True)
