"""JSON routes: sign-in, tokens, me, organisations."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from studyshelf.core.errors import NotAuthenticated
from studyshelf.partners import service
from studyshelf.partners.deps import SESSION_COOKIE, ClientIp, CurrentPrincipal, DbSession, ServicesDep
from studyshelf.partners.models import User, WebSession
from studyshelf.partners.schemas import (
    LoginRequest,
    LoginResponse,
    MemberRead,
    OrgRead,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserRead,
)
from studyshelf.services import Services
from studyshelf.web.security import is_https

router = APIRouter(prefix="/api/v1", tags=["auth & organisations"])


def set_session_cookie(response: Response, *, value: str, services: Services, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(timedelta(hours=services.settings.session_lifetime_hours).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def sign_in(
    request: Request, response: Response, *, db: Session, services: Services, email: str, password: str, client: str
) -> WebSession:
    """Check the password (recording a failure even though the request then fails) and set the cookie."""
    settings = services.settings
    try:
        user = service.authenticate(
            db,
            email=email,
            password=password,
            client=client,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
    except NotAuthenticated:
        db.commit()
        raise
    session, secret = service.create_session(db, user=user, lifetime_hours=settings.session_lifetime_hours)
    secure = settings.secure_cookies or is_https(request.scope, settings.trusted_proxies)
    set_session_cookie(response, value=secret, services=services, secure=secure)
    return session


@router.post("/auth/login", response_model=LoginResponse)
def login(
    body: LoginRequest, request: Request, response: Response, db: DbSession, services: ServicesDep, client: ClientIp
) -> LoginResponse:
    """Sign in with e-mail and password; sets an HttpOnly session cookie and returns the CSRF token."""
    session = sign_in(
        request, response, db=db, services=services, email=body.email, password=body.password, client=client
    )
    user = db.get(User, session.user_id)
    return LoginResponse(user=UserRead.model_validate(user), csrf_token=session.csrf_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: CurrentPrincipal, db: DbSession) -> Response:
    """End the browser session."""
    if principal.session is not None:
        service.end_session(db, session=principal.session)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/tokens", response_model=list[TokenRead])
def list_tokens(principal: CurrentPrincipal, db: DbSession) -> list[TokenRead]:
    """Your personal API tokens (never their secrets)."""
    return [TokenRead.model_validate(t) for t in service.list_api_tokens(db, user=principal.user)]


@router.post("/auth/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, principal: CurrentPrincipal, db: DbSession) -> TokenCreated:
    """Create a personal API token; the secret is in the answer and nowhere else, ever."""
    token, plaintext = service.create_api_token(
        db, user=principal.user, name=body.name, org_id=body.org_id, role=body.role
    )
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=plaintext)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> Response:
    """Revoke one of your tokens."""
    service.revoke_api_token(db, user=principal.user, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/orgs", response_model=list[OrgRead])
def list_orgs(principal: CurrentPrincipal, db: DbSession) -> list[OrgRead]:
    """Organisations visible to you."""
    return [OrgRead.model_validate(o) for o in service.list_organizations(db, principal=principal)]


@router.get("/orgs/{org_id}/members", response_model=list[MemberRead])
def list_members(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession) -> list[MemberRead]:
    """Members of an organisation you belong to."""
    members = service.list_members(db, principal=principal, org_id=org_id)
    return [MemberRead(user=UserRead.model_validate(m.user), role=m.role, created_at=m.created_at) for m in members]
