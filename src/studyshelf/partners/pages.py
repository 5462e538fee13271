"""HTML pages: signing in and out, switching organisation, API tokens, organisation settings, invitations, audit log."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import (
    Conflict,
    CsrfFailed,
    Invalid,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyRequests,
)
from studyshelf.partners import audit, members, service
from studyshelf.partners.api import invitation_url, send_invitation, sign_in
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
from studyshelf.partners.models import AuditEntry, Membership, Organization, Role
from studyshelf.partners.permissions import (
    Permission,
    allows,
    assignable_roles,
    is_operator_admin,
    operates_platform,
)
from studyshelf.partners.principal import Principal
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, render_error_page, translated

router = APIRouter(include_in_schema=False)
FormStr = Annotated[str, Form()]
MIN_PASSWORD = 8


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


def fill_page_context(request: Request, principal: Principal) -> None:
    """What every signed-in page shows: the user, their organisations, the top bar's entries, the CSRF token."""
    choices = [OrgChoice(m.org_id, m.organization.name, m.role) for m in principal.user.memberships]
    choices.sort(key=lambda choice: choice.name.casefold())
    current = current_org_id(principal)
    request.state.template_context = {
        "me": Viewer(principal.user.email, principal.user.name),
        "memberships": choices,
        "current_org": next((choice for choice in choices if choice.id == current), None),
        "can_audit": current is not None and allows(principal, Permission.AUDIT_READ, current),
        "operates_platform": operates_platform(principal),
        "operator_admin": is_operator_admin(principal),
        "csrf_token": principal.session.csrf_token if principal.session else "",
    }


def page_principal(request: Request, principal: CurrentPrincipal) -> Principal:
    """The signed-in principal of an HTML page; also fills what every page shows (user, organisations, CSRF)."""
    fill_page_context(request, principal)
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def safe_next(target: str | None) -> str:
    """Only ever redirect within this site after sign-in."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def cross_site_refusal(request: Request, services: ServicesDep) -> Response | None:
    """The 403 page for a sign-in or sign-up form posted from another site; None when it came from ours."""
    try:
        refuse_cross_site(request, services)
    except CsrfFailed as exc:
        context = {"detail": exc.detail, "sign_in_url": services.settings.base_url.rstrip("/") + "/login"}
        return render(request, "partners/cross_site.html", context, status=exc.status)
    return None


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
    if (refused := cross_site_refusal(request, services)) is not None:
        return refused
    response = RedirectResponse(safe_next(next), status_code=303)
    try:
        sign_in(request, response, db=db, services=services, email=email, password=password, client=client)
    except (NotAuthenticated, TooManyRequests) as exc:
        context = {"next": safe_next(next), "email": email, "error": exc.detail}
        retry = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        return render(request, "partners/login.html", context, status=exc.status, headers=retry)
    return response


@router.post("/logout")
def logout(principal: CurrentPrincipal, db: DbSession, now: Now) -> Response:
    if principal.session is not None:
        service.end_session(db, session=principal.session, now=now)
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
def revoke_token(request: Request, token_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    service.revoke_api_token(db, user=principal.user, token_id=token_id, now=now)
    return _tokens_page(request, principal, db, revoked=True)


# --- Organisation settings: members, roles and invitations -------------------------------------------------


def _acting_org(principal: Principal) -> uuid.UUID:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound(N_("You are not a member of any organisation."))
    return org_id


@dataclass(frozen=True)
class MemberRow:
    """A member as the settings table shows them, with what the viewer may do to them."""

    membership: Membership
    can_change: bool
    last_owner: bool
    is_me: bool


def _org_settings(
    request: Request, db: DbSession, principal: Principal, *, now: datetime, block: str, **extra: Any
) -> Response:
    """The organisation page, or (for HTMX) one block of it, with a toast when a message is given."""
    org_id = _acting_org(principal)
    memberships = service.list_members(db, principal=principal, org_id=org_id)
    can_manage = allows(principal, Permission.MEMBERS_MANAGE, org_id)
    assignable = assignable_roles(principal, org_id)
    owners = sum(1 for m in memberships if m.role is Role.OWNER)
    rows = []
    for m in memberships:
        last_owner = m.role is Role.OWNER and owners <= 1
        rows.append(
            MemberRow(
                m, can_manage and m.role in assignable and not last_owner, last_owner, m.user_id == principal.user.id
            )
        )
    context = {
        "org": service.get_organization(db, org_id),
        "members": rows,
        "can_manage": can_manage,
        "assignable_roles": assignable,
        "invitations": members.list_invitations(db, principal=principal, org_id=org_id, now=now) if can_manage else [],
        **extra,
    }
    message = extra.pop("message", None)
    if not is_htmx(request):
        return render(request, "partners/organization.html", context)
    headers = {"HX-Trigger": json.dumps({"toast": {"message": message}})} if message else None
    return render(request, "partners/organization.html", context, block=block, headers=headers)


@router.get("/settings/organization", response_class=HTMLResponse)
def organization_page(request: Request, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    return _org_settings(request, db, principal, now=now, block="members")


@router.post("/settings/organization/members/{user_id}/role", response_class=HTMLResponse)
def change_member_role(
    request: Request,
    user_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    now: Now,
    role: Annotated[Role, Form()],
) -> Response:
    changed = members.change_role(db, principal=principal, org_id=_acting_org(principal), user_id=user_id, role=role)
    role_name = translated(request, role.label)
    message = translated(request, N_("%(email)s is now %(role)s."), email=changed.user.email, role=role_name)
    return _org_settings(request, db, principal, now=now, block="members", message=message)


@router.post("/settings/organization/members/{user_id}/remove", response_class=HTMLResponse)
def remove_member(request: Request, user_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    members.remove_member(db, principal=principal, org_id=_acting_org(principal), user_id=user_id, now=now)
    if user_id == principal.user.id:  # left the organisation: its settings are no longer ours to see
        return (
            Response(status_code=204, headers={"HX-Redirect": "/"}) if is_htmx(request) else RedirectResponse("/", 303)
        )
    return _org_settings(
        request, db, principal, now=now, block="members", message=translated(request, N_("The member was removed."))
    )


@router.post("/settings/organization/invitations", response_class=HTMLResponse)
def invite(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    email: FormStr,
    role: Annotated[Role, Form()],
) -> Response:
    org_id = _acting_org(principal)
    invitation, secret = members.create_invitation(
        db, principal=principal, org_id=org_id, email=email, role=role, now=now
    )
    org_name = service.get_organization(db, org_id).name
    db.commit()  # the invitation exists before anyone can receive its link
    url = invitation_url(services, secret)
    emailed = send_invitation(
        services, email=invitation.email, org_name=org_name, inviter=principal.user.email, url=url
    )
    message = translated(request, N_("Invitation for %(email)s created."), email=invitation.email)
    return _org_settings(
        request,
        db,
        principal,
        now=now,
        block="invitations",
        invited=invitation,
        url=url,
        emailed=emailed,
        message=message,
    )


@router.post("/settings/organization/invitations/{invitation_id}/revoke", response_class=HTMLResponse)
def revoke_invitation(
    request: Request, invitation_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    members.revoke_invitation(db, principal=principal, invitation_id=invitation_id, now=now)
    message = translated(request, N_("The invitation was withdrawn."))
    return _org_settings(request, db, principal, now=now, block="invitations", message=message)


# --- Accepting an invitation ---------------------------------------------------------------------------------


def _invitation_page(
    request: Request,
    db: DbSession,
    principal: Principal | None,
    secret: str,
    *,
    now: datetime,
    status: int = 200,
    **extra: Any,
) -> Response:
    """The accept page in the state that fits who is looking; a friendly error page for a dead link."""
    if principal is not None:
        fill_page_context(request, principal)
    try:
        invitation, org = members.open_invitation(db, secret=secret, now=now)
    except (Invalid, NotFound) as exc:
        code = 410 if isinstance(exc, Invalid) else 404
        return render_error_page(request, status=code, title="This invitation cannot be used", detail=exc.detail)
    if principal is not None:
        state = "join" if principal.user.email == invitation.email else "other_user"
    else:
        state = "sign_in" if members.invitee_has_account(db, invitation=invitation) else "sign_up"
    context = {"invitation": invitation, "org": org, "state": state, "secret": secret, "name": "", **extra}
    return render(request, "partners/invitation.html", context, status=status)


@router.get("/invitations/{secret}", response_class=HTMLResponse)
def invitation_page(request: Request, secret: str, db: DbSession, principal: OptionalPrincipal, now: Now) -> Response:
    return _invitation_page(request, db, principal, secret, now=now)


@router.post("/invitations/{secret}", response_class=HTMLResponse)
def accept_with_new_account(
    request: Request,
    secret: str,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    client: ClientIp,
    password: FormStr,
    name: FormStr = "",
) -> Response:
    """Create the invited account, join, and sign in."""
    if (refused := cross_site_refusal(request, services)) is not None:
        return refused
    if len(password) < MIN_PASSWORD:
        error = f"Choose a password of at least {MIN_PASSWORD} characters."
        return _invitation_page(request, db, None, secret, now=now, status=422, error=error, name=name)
    try:
        user = members.accept_invitation(
            db, secret=secret, user=None, now=now, password=password, name=name.strip()[:200]
        )
    except (Conflict, Invalid) as exc:
        return _invitation_page(request, db, None, secret, now=now, status=exc.status, error=exc.detail, name=name)
    response = RedirectResponse("/", status_code=303)
    sign_in(request, response, db=db, services=services, email=user.email, password=password, client=client)
    return response


@router.post("/invitations/{secret}/join")
def join(request: Request, secret: str, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    """Join as the signed-in user, and work in the organisation just joined."""
    try:
        invitation, _org = members.open_invitation(db, secret=secret, now=now)
        members.accept_invitation(db, secret=secret, user=principal.user, now=now)
    except (Invalid, NotFound, PermissionDenied) as exc:
        return _invitation_page(request, db, principal, secret, now=now, status=exc.status, error=exc.detail)
    service.switch_organization(db, principal=principal, org_id=invitation.org_id)
    return RedirectResponse("/", status_code=303)


# --- Audit log -----------------------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50
LONG_ID = re.compile(r"[0-9a-f-]{32,}")


def _day(value: str, field: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as exc:
        raise Invalid(f"The {field} date is not a date (use YYYY-MM-DD).") from exc


def _changes(entry: AuditEntry, names: dict[str, str]) -> list[tuple[str, str, str]]:
    """before → after as (field, old, new) rows; organisation ids shown by name."""
    try:
        before = json.loads(entry.before) if entry.before else {}
        after = json.loads(entry.after) if entry.after else {}
    except ValueError:  # summaries are cut at 4,000 characters
        return [("", entry.before, entry.after)]

    def show(value: object) -> str:
        text = "" if value is None else names.get(str(value), str(value))
        return text[:8] + "…" if LONG_ID.fullmatch(text) else text  # hashes and ids: the start is enough to tell

    rows = [
        (key.replace("_org_id", "").replace("_", " "), show(before.get(key)), show(after.get(key)))
        for key in before | after
    ]
    return sorted(row for row in rows if row[1] or row[2])


@router.get("/settings/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    actor: Annotated[str, Query(max_length=320)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    target: Annotated[str, Query(max_length=300)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    org_id = _acting_org(principal)
    first, last = _day(since, "from"), _day(until, "to")
    flt = audit.AuditFilter(
        actor=actor.strip() or None,
        action=action or None,
        target=target.strip() or None,
        since=datetime.combine(first, time.min, UTC) if first else None,
        until=datetime.combine(last + timedelta(days=1), time.min, UTC) if last else None,
    )
    entries = audit.list_entries(
        db, principal=principal, org_id=org_id, flt=flt, limit=AUDIT_PAGE_SIZE + 1, offset=offset
    )
    names = {str(o.id): o.name for o in service.list_organizations(db, principal=principal)}
    filters = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    dates = {"since": flt.since.isoformat() if flt.since else "", "until": flt.until.isoformat() if flt.until else ""}
    csv_query = {k: v for k, v in {**filters, **dates}.items() if v}
    context = {
        "entries": [(e, _changes(e, names)) for e in entries[:AUDIT_PAGE_SIZE]],
        "actions": audit.list_actions(db, principal=principal, org_id=org_id),
        "filters": filters,
        "filtered": any(filters.values()),
        "offset": offset,
        "page_size": AUDIT_PAGE_SIZE,
        "newer": urlencode({**filters, "offset": max(0, offset - AUDIT_PAGE_SIZE)}) if offset else None,
        "older": urlencode({**filters, "offset": offset + AUDIT_PAGE_SIZE}) if len(entries) > AUDIT_PAGE_SIZE else None,
        "csv_url": f"/api/v1/orgs/{org_id}/audit.csv" + (f"?{urlencode(csv_query)}" if csv_query else ""),
    }
    return render(request, "partners/audit.html", context)
