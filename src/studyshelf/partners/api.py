"""JSON routes: sign-in, tokens, organisations, members, invitations, audit log."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from studyshelf.core.errors import NotAuthenticated
from studyshelf.mail import MailError, Message
from studyshelf.partners import audit, members, service
from studyshelf.partners.deps import (
    SESSION_COOKIE,
    ClientIp,
    CurrentPrincipal,
    DbSession,
    Now,
    OptionalPrincipal,
    ServicesDep,
    refuse_cross_site,
)
from studyshelf.partners.models import User, WebSession
from studyshelf.partners.schemas import (
    AuditEntryRead,
    AuditQuery,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationRead,
    LoginRequest,
    LoginResponse,
    MemberRead,
    MemberUpdate,
    OrgRead,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserRead,
)
from studyshelf.partners.throttle import ThrottlePolicy
from studyshelf.services import Services
from studyshelf.web.security import is_https

router = APIRouter(prefix="/api/v1", tags=["auth & organisations"])
log = logging.getLogger("studyshelf.partners")


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
    now = services.clock.now()
    try:
        user = service.authenticate(
            db,
            email=email,
            password=password,
            client=client,
            policy=ThrottlePolicy.from_settings(settings),
            now=now,
        )
    except NotAuthenticated:
        db.commit()
        raise
    session, secret = service.create_session(db, user=user, lifetime_hours=settings.session_lifetime_hours, now=now)
    secure = settings.secure_cookies or is_https(request.scope, settings.trusted_proxies)
    set_session_cookie(response, value=secret, services=services, secure=secure)
    return session


@router.post("/auth/login", response_model=LoginResponse, dependencies=[Depends(refuse_cross_site)])
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
def logout(principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """End the browser session."""
    if principal.session is not None:
        service.end_session(db, session=principal.session, now=now)
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
        db, user=principal.user, name=body.name, org_id=body.org_id, role=body.role, acting_token=principal.token
    )
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=plaintext)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """Revoke one of your tokens."""
    service.revoke_api_token(db, user=principal.user, token_id=token_id, now=now)
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


@router.patch("/orgs/{org_id}/members/{user_id}", response_model=MemberRead)
def change_member_role(
    org_id: uuid.UUID, user_id: uuid.UUID, body: MemberUpdate, principal: CurrentPrincipal, db: DbSession
) -> MemberRead:
    """Give a member another role (admins; only owners touch owners; the last owner stays)."""
    membership = members.change_role(db, principal=principal, org_id=org_id, user_id=user_id, role=body.role)
    return MemberRead(
        user=UserRead.model_validate(membership.user), role=membership.role, created_at=membership.created_at
    )


@router.delete("/orgs/{org_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    org_id: uuid.UUID, user_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now
) -> Response:
    """Remove a member (or leave, for yourself); their tokens for this organisation stop working."""
    members.remove_member(db, principal=principal, org_id=org_id, user_id=user_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def invitation_url(services: Services, secret: str) -> str:
    return f"{services.settings.base_url.rstrip('/')}/invitations/{secret}"


def send_invitation(services: Services, *, email: str, org_name: str, inviter: str, url: str) -> bool:
    """E-mail the link when a mail server is configured; the link is shown in the UI either way."""
    if not services.mailer.enabled:
        return False
    text = (
        f"{inviter} invited you to join {org_name} on StudyShelf.\n\n"
        f"Open this link within 7 days to accept (it works once):\n{url}\n"
    )
    try:
        services.mailer.send(Message(to=email, subject=f"Join {org_name} on StudyShelf", text=text))
    except MailError:
        log.warning("invitation e-mail to %s failed", email, exc_info=True)
        return False
    return True


@router.post("/orgs/{org_id}/invitations", response_model=InvitationCreated, status_code=status.HTTP_201_CREATED)
def create_invitation(
    org_id: uuid.UUID,
    body: InvitationCreate,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> InvitationCreated:
    """Invite someone by e-mail with a role; the single-use link expires in 7 days."""
    invitation, secret = members.create_invitation(
        db, principal=principal, org_id=org_id, email=body.email, role=body.role, now=now
    )
    org_name = service.get_organization(db, invitation.org_id).name
    db.commit()  # the invitation exists before anyone can receive its link
    url = invitation_url(services, secret)
    emailed = send_invitation(
        services, email=invitation.email, org_name=org_name, inviter=principal.user.email, url=url
    )
    return InvitationCreated(**InvitationRead.model_validate(invitation).model_dump(), url=url, emailed=emailed)


@router.get("/orgs/{org_id}/invitations", response_model=list[InvitationRead])
def list_invitations(org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> list[InvitationRead]:
    """Invitations still open."""
    found = members.list_invitations(db, principal=principal, org_id=org_id, now=now)
    return [InvitationRead.model_validate(i) for i in found]


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_invitation(invitation_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    """Withdraw an invitation."""
    members.revoke_invitation(db, principal=principal, invitation_id=invitation_id, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitations/accept", response_model=UserRead)
def accept_invitation(body: InvitationAccept, principal: OptionalPrincipal, db: DbSession, now: Now) -> UserRead:
    """Accept an invitation as the signed-in user, or create an account with a password."""
    user = members.accept_invitation(
        db,
        secret=body.token,
        user=principal.user if principal else None,
        now=now,
        password=body.password,
        name=body.name,
    )
    return UserRead.model_validate(user)


@router.get("/orgs/{org_id}/audit", response_model=list[AuditEntryRead])
def list_audit(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    flt: Annotated[AuditQuery, Query()],
) -> list[AuditEntryRead]:
    """The organisation's audit log, newest first (admins)."""
    entries = audit.list_entries(
        db, principal=principal, org_id=org_id, flt=flt.to_filter(), limit=flt.limit, offset=flt.offset
    )
    return [AuditEntryRead.model_validate(e) for e in entries]


@router.get(
    "/orgs/{org_id}/audit.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}}
)
def export_audit(
    org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, flt: Annotated[AuditQuery, Query()]
) -> StreamingResponse:
    """The filtered audit log as CSV."""
    lines = list(audit.export_csv(db, principal=principal, org_id=org_id, flt=flt.to_filter()))
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
